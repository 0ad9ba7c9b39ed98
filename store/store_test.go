package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, dir string, f Fsync) *Store {
	t.Helper()
	s, err := Open(dir, Options{Fsync: f})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustClose(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func testMessage() Message {
	props := &packetgen.Properties{ContentType: "text/plain", ResponseTopic: "re/1", CorrelationData: []byte{0, 1},
		PayloadFormatIndicator: 1, UserProperties: []packetgen.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}}}
	props.Present = forwarded
	return Message{Topic: []byte("a/b"), Payload: []byte("payload\x00"), QoS: 2, Retain: true, Origin: "pub",
		Props: props, Expires: time.Unix(1700000000, 5)}
}

// Every kind of record reads back as it was written, across a reopen.
func TestRecordsRoundTrip(t *testing.T) {
	for _, f := range []Fsync{{Mode: FsyncAlways}, {Mode: FsyncInterval, Interval: 10 * time.Millisecond}, {Mode: FsyncNever}} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, f)
			m := testMessage()
			sess := Session{ClientID: "c\x01", Expiry: 60, Deadline: time.Unix(1800000000, 0), User: "u"}
			sub := Subscription{ClientID: "c\x01", Filter: "$share/g/x/#", Shared: true, QoS: 1, NoLocal: true, RetainAsPublished: true, ID: 77}
			d1 := Delivery{Seq: s.NextSeq(), ClientID: "c\x01", Msg: m, QoS: 2, Retain: true, SubIDs: []uint32{1, 77}, Share: "$share/g/x/#", PacketID: 9, Released: true}
			d2 := Delivery{Seq: s.NextSeq(), ClientID: "c\x01", Msg: Message{Topic: []byte("q"), QoS: 1}, QoS: 1}
			w := Will{ClientID: "c\x01", Msg: m, Expiry: 3 * time.Second, Delay: 10, Deadline: time.Unix(1800000001, 0)}
			s.PutSession(sess)
			s.PutSubscription(sub)
			s.PutInbound("c\x01", 513)
			s.AddDelivery(&d1)
			s.AddDelivery(&d2)
			s.PutRetained(&m)
			s.PutWill(&w)
			mustClose(t, s)

			s = open(t, dir, f)
			defer mustClose(t, s)
			st := s.Recovered()
			if s.Recovered() != nil {
				t.Error("Recovered returned the state twice")
			}
			check := func(what string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
				}
			}
			check("sessions", st.Sessions, []Session{sess})
			check("subscriptions", st.Subscriptions, []Subscription{sub})
			check("inbound", st.Inbound, map[string][]uint16{"c\x01": {513}})
			check("deliveries", st.Deliveries, []Delivery{d1, d2})
			check("retained", st.Retained, []Message{m})
			check("wills", st.Wills, []Will{w})
			if seq := s.NextSeq(); seq <= d2.Seq {
				t.Errorf("NextSeq after reopen %d, want above %d", seq, d2.Seq)
			}
		})
	}
}

// Deletes remove records; a delivery added and deleted before its batch
// commits is never written.
func TestDeletesAndCoalescing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Fsync{Mode: FsyncAlways})
	m := testMessage()
	keep := Delivery{Seq: s.NextSeq(), ClientID: "c", Msg: m, QoS: 1}
	gone := Delivery{Seq: s.NextSeq(), ClientID: "c", Msg: m, QoS: 1}
	s.AddDelivery(&keep)
	s.AddDelivery(&gone)
	s.PutSession(Session{ClientID: "c", Expiry: 5})
	s.PutInbound("c", 1)
	s.PutRetained(&m)
	waitDurable(t, s)
	s.DeleteDelivery(gone.Seq)
	s.DeleteInbound("c", 1)
	s.DeleteRetained(m.Topic)
	keep.PacketID = 4
	s.UpdateDelivery(&keep)

	// Added and deleted within one batch: the batch holds nothing of it.
	s.mu.Lock()
	before := s.pending.len()
	s.mu.Unlock()
	brief := Delivery{Seq: s.NextSeq(), ClientID: "c", Msg: m, QoS: 1}
	s.AddDelivery(&brief)
	s.DeleteDelivery(brief.Seq)
	s.mu.Lock()
	after := s.pending.len()
	s.mu.Unlock()
	if after > before {
		t.Errorf("pending grew from %d to %d for a delivery added and deleted in one batch", before, after)
	}
	mustClose(t, s)

	s = open(t, dir, Fsync{Mode: FsyncAlways})
	defer mustClose(t, s)
	st := s.Recovered()
	if len(st.Deliveries) != 1 || st.Deliveries[0].Seq != keep.Seq || st.Deliveries[0].PacketID != 4 {
		t.Errorf("deliveries %+v, want only %d with packet identifier 4", st.Deliveries, keep.Seq)
	}
	if len(st.Inbound) != 0 || len(st.Retained) != 0 || len(st.Sessions) != 1 {
		t.Errorf("inbound %v retained %d sessions %d, want none, none, one", st.Inbound, len(st.Retained), len(st.Sessions))
	}
}

func waitDurable(t *testing.T, s *Store) {
	t.Helper()
	done := make(chan struct{})
	if !s.Wait(s.Mark(), func() { close(done) }) {
		return
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the batch did not commit within 5 s")
	}
}

// Mark and Wait: a batch is reported durable only after its commit, and
// callbacks run for every batch up to the one committed.
func TestMarkAndWait(t *testing.T) {
	s := open(t, t.TempDir(), Fsync{Mode: FsyncAlways})
	defer mustClose(t, s)
	if b := s.Mark(); !s.Durable(b) || s.Wait(b, func() { t.Error("called back for a durable batch") }) {
		t.Fatalf("an empty store's mark %d is not durable", b)
	}
	var called atomic.Int32
	var marks []uint64
	for i := range 50 {
		s.PutSession(Session{ClientID: string(rune('a' + i%26)), Expiry: uint32(i)})
		b := s.Mark()
		marks = append(marks, b)
		if s.Wait(b, func() {
			if !s.Durable(b) {
				t.Errorf("called back for batch %d before it was durable", b)
			}
			called.Add(1)
		}) {
			continue
		}
		called.Add(1)
	}
	deadline := time.Now().Add(5 * time.Second)
	for called.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := called.Load(); n != 50 {
		t.Fatalf("%d of 50 waits were answered", n)
	}
	st := s.Stats()
	if st.Commits == 0 || st.Commits > 50 || st.Syncs != st.Commits || st.Writes < 26 || st.Writes > 50 {
		t.Errorf("%+v for 50 changes of 26 sessions under always", st)
	}
	if marks[len(marks)-1] < marks[0] {
		t.Errorf("marks went backwards: %v", marks)
	}
}

func TestParseFsync(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Fsync
		err  string
	}{
		{"always", Fsync{Mode: FsyncAlways}, ""},
		{"never", Fsync{Mode: FsyncNever}, ""},
		{"interval=100ms", Fsync{Mode: FsyncInterval, Interval: 100 * time.Millisecond}, ""},
		{"interval=0s", Fsync{}, "positive duration"},
		{"interval=x", Fsync{}, "positive duration"},
		{"sometimes", Fsync{}, "want always"},
	} {
		got, err := ParseFsync(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || got.String() != c.in {
			t.Errorf("%q: got %+v (%s), %v", c.in, got, got, err)
		}
	}
}

// A second process cannot open a store in use.
func TestInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Fsync{})
	defer mustClose(t, s)
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}

// A damaged or foreign file is an error at Open naming the file, never a
// store that silently holds less.
// reachableLeaf returns the offset of a leaf page in use that holds b (a
// free page holding an old copy would lose nothing).
func reachableLeaf(t *testing.T, path string, b []byte) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	page := -1
	err = db.Update(func(tx *bolt.Tx) error {
		for id := 2; page < 0; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			off := id * db.Info().PageSize
			if info.Type == "leaf" && bytes.Contains(raw[off:off+db.Info().PageSize], b) {
				page = off
			}
		}
		return nil
	})
	if err != nil || page < 0 {
		t.Fatalf("no leaf page in use holds %q (%v)", b, err)
	}
	return page
}

func TestDamagedStore(t *testing.T) {
	marker := []byte("MARKER-PAYLOAD-0123456789")
	// fill writes a store with enough records to span several pages and
	// one retained message whose payload is marker.
	fill := func(t *testing.T, dir string) string {
		s := open(t, dir, Fsync{})
		for i := range 2000 {
			s.PutSession(Session{ClientID: strings.Repeat("x", 20) + string(rune('A'+i%50)) + string(rune(i)), Expiry: 9})
		}
		s.PutRetained(&Message{Topic: []byte("t"), Payload: marker, QoS: 1})
		mustClose(t, s)
		return filepath.Join(dir, FileName)
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"value bit flipped", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			i := bytes.Index(b, marker)
			if i < 0 {
				t.Fatal("marker not in the file")
			}
			b[i+3] ^= 0x40
			os.WriteFile(path, b, 0o600) //nolint:errcheck
		}, "checksum mismatch"},
		{"truncated to half", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/2) //nolint:errcheck
		}, "damaged"},
		{"truncated to one page", func(t *testing.T, path string) {
			os.Truncate(path, 4096) //nolint:errcheck
		}, "damaged"},
		{"leaf page zeroed", func(t *testing.T, path string) {
			page := reachableLeaf(t, path, []byte(strings.Repeat("x", 20)))
			b, _ := os.ReadFile(path)
			clear(b[page : page+4096])
			os.WriteFile(path, b, 0o600) //nolint:errcheck
		}, "damaged"},
		{"emptied", func(t *testing.T, path string) {
			os.Truncate(path, 0) //nolint:errcheck
		}, "the file is empty"},
		{"truncated to the meta pages", func(t *testing.T, path string) {
			os.Truncate(path, 8192) //nolint:errcheck
		}, "truncated?"},
		{"not a store", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600) //nolint:errcheck
		}, "damaged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := fill(t, dir)
			c.damage(t, path)
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a damaged store")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line naming %s and saying %q", msg, path, c.want)
			}
		})
	}
}

// A commit that fails stops the store: Failed is closed, Err and Close
// say why, and nothing waiting is told its batch is durable.
func TestCommitFailure(t *testing.T) {
	s := open(t, t.TempDir(), Fsync{})
	s.db.Close() // the file goes away under the committer
	s.PutSession(Session{ClientID: "c", Expiry: 1})
	b := s.Mark()
	if !s.Wait(b, func() { t.Error("told a failed batch is durable") }) {
		t.Fatal("a batch was durable before its commit")
	}
	select {
	case <-s.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("Failed not closed 5 s after a failing commit")
	}
	if s.Durable(b) || s.Err() == nil || !strings.Contains(s.Err().Error(), "commit") {
		t.Fatalf("durable %v, Err %v", s.Durable(b), s.Err())
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close after a failed commit returned nil")
	}
}

// Changes between Hold and Release commit in one batch: the committer
// does not close the batch while a Hold is in progress.
func TestHoldKeepsChangesTogether(t *testing.T) {
	for _, f := range []Fsync{{Mode: FsyncAlways}, {Mode: FsyncNever}} {
		t.Run(f.String(), func(t *testing.T) {
			s := open(t, t.TempDir(), f)
			defer mustClose(t, s)
			s.Hold()
			s.PutInbound("c", 1)
			first := s.Mark()
			time.Sleep(20 * time.Millisecond) // long enough for several commits
			if s.Durable(first) {
				t.Fatal("a batch committed while a Hold was in progress")
			}
			s.AddDelivery(&Delivery{Seq: s.NextSeq(), ClientID: "c", QoS: 2})
			if second := s.Mark(); second != first {
				t.Fatalf("the changes of one Hold went into batches %d and %d", first, second)
			}
			s.Release()
			waitDurable(t, s)
		})
	}
}
