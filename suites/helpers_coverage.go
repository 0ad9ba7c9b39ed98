package suites

import "github.com/mqttbench/mqttbench/packetgen"

// citedStatements walks every section's specs without Ginkgo (S.cite makes
// Spec record its statement IDs instead of adding a spec) and returns the
// IDs they cite. Some specs choose their statements from the run's seed
// (the malformed classes of section 4.8 whose rule depends on the generated
// case), so the walk is done for several seeds: an ID maps to true when
// every seed cites it, to false when only some do. The coverage test counts
// only the former as covered, and checks all of them against the list.
func citedStatements(v packetgen.Version) map[string]bool {
	seeds := []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233}
	count := map[string]int{}
	for _, seed := range seeds {
		cfg := &Config{Seed: seed, Version: v}
		cfg.withDefaults()
		seen := map[string]bool{}
		for _, sec := range sections {
			if sec.version != v {
				continue
			}
			s := &S{cfg: cfg, section: sec.number, cite: func(ids []string) {
				for _, id := range ids {
					seen[id] = true
				}
			}}
			sec.specs(s)
		}
		for id := range seen {
			count[id]++
		}
	}
	out := map[string]bool{}
	for id, n := range count {
		out[id] = n == len(seeds)
	}
	return out
}
