#!/usr/bin/env python3
"""Compare conformance results of one broker reached over several transports.

    scripts/verdicts.py [--ignore-label L]... [--protocol P] BASE.json OTHER.json...

Each file is a `mqttbench conform --json` result of the same seed (so the
runs hold the same specs). Prints each run's counts, then every spec whose
state differs from BASE. A spec that is passed, failed or a known deviation
in one run and another of those in the other is a mismatch, and so is one
skipped in one run only: the transport changed a verdict. A spec
inconclusive in one run (an answer that did not come in time) is shown but
tolerated. Specs carrying an ignored label (such as "websocket", which only
runs over ws://) are left out, and with --protocol P (3.1.1 or 5.0) only
that version's specs are compared. Exits 1 on a mismatch.
"""
import json
import sys
from collections import Counter

SETTLED = {"passed", "failed", "deviation"}


def load(path, ignore, protocol=None):
    with open(path) as f:
        res = json.load(f)
    # A --protocol all run has the specs of each version, some of the same
    # name: the version is part of the key.
    specs = {(s.get("protocol", "") + " " + s["name"]).strip(): s
             for s in res.get("specs", [])
             if not ignore & set(s.get("labels") or []) and protocol in (None, s.get("protocol"))}
    return res, specs


def counts(specs):
    c = Counter(s["state"] for s in specs.values())
    order = ["passed", "failed", "deviation", "inconclusive", "skipped", "interrupted"]
    return ", ".join(f"{c[k]} {k}" for k in order if c[k]) or "no specs"


def main(argv):
    ignore = set()
    protocol = None
    files = []
    args = iter(argv)
    for a in args:
        if a == "--ignore-label":
            ignore.add(next(args))
        elif a == "--protocol":
            protocol = next(args)
        else:
            files.append(a)
    if len(files) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base_res, base = load(files[0], ignore, protocol)
    print(f"{files[0]} ({base_res.get('broker')}): {counts(base)}")
    bad = 0
    for path in files[1:]:
        res, other = load(path, ignore, protocol)
        print(f"{path} ({res.get('broker')}): {counts(other)}")
        if res.get("seed") != base_res.get("seed"):
            print(f"  seed {res.get('seed')} differs from {base_res.get('seed')}: the runs hold different specs")
            bad += 1
            continue
        for name in sorted(set(base) | set(other)):
            a = base.get(name, {}).get("state", "absent")
            b = other.get(name, {}).get("state", "absent")
            if a == b:
                continue
            tolerated = "inconclusive" in (a, b) and ({a, b} - {"inconclusive"}) <= SETTLED
            print(f"  {'tolerated' if tolerated else 'MISMATCH'}: {a} -> {b}: {name}")
            if not tolerated:
                bad += 1
    if bad:
        print(f"{bad} verdicts differ between transports", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
