package topic

import (
	"strconv"
	"testing"
)

var benchMatch = []struct{ desc, filter, name string }{
	{"literal", "site7/device1234/telemetry/temp", "site7/device1234/telemetry/temp"},
	{"plus", "site7/+/telemetry/+", "site7/device1234/telemetry/temp"},
	{"hash", "site7/#", "site7/device1234/telemetry/temp"},
	{"miss early", "site8/+/telemetry/temp", "site7/device1234/telemetry/temp"},
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range benchMatch {
		b.Run(bc.desc+"/string", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(bc.filter, bc.name)
			}
		})
		name := []byte(bc.name)
		b.Run(bc.desc+"/bytes", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(bc.filter, name)
			}
		})
	}
}

func BenchmarkValidateName(b *testing.B) {
	name := []byte("site7/device1234/telemetry/temp")
	b.ReportAllocs()
	b.SetBytes(int64(len(name)))
	for b.Loop() {
		if ValidateName(name, true) != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidateFilter(b *testing.B) {
	filter := []byte("site7/+/telemetry/#")
	b.ReportAllocs()
	b.SetBytes(int64(len(filter)))
	for b.Loop() {
		if ValidateFilter(filter, true) != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkTreeMatch(b *testing.B) {
	for _, n := range []int{100, 10000} {
		tr, names := benchTree(n)
		bnames := make([][]byte, len(names))
		for i, s := range names {
			bnames[i] = []byte(s)
		}
		matches := 0
		fn := func(string, int) { matches++ }
		b.Run("bytes/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr.MatchBytes(bnames[i%len(bnames)], fn)
				i++
			}
		})
		b.Run("string/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr.Match(names[i%len(names)], fn)
				i++
			}
		})
		if matches == 0 {
			b.Fatal("no matches")
		}
	}
}
