#!/usr/bin/env python3
"""Broker throughput on loopback, the same client (mqttbench load) against
each broker in one run: fan-in (100 publishers -> 1 subscriber), fan-out
(1 -> 100) and point to point (100 -> 100) at QoS 0, 1 and 2, 64-byte
payloads. For each case the offered rate steps up until a run is not clean
(missed sends, generator lag, loss, violations, connection errors, or under
95% delivered during publishing); the table shows the highest clean rate, messages
delivered per second at it, and end-to-end p50/p99.

  scripts/bench-brokers.py [--v5] [BROKERS [PATTERNS [QOS]]]
  scripts/bench-brokers.py ref,mosquitto,mochi fan-in,p2p 1

BROKERS: ref (mqttbench broker), mosquitto, mochi, aedes. Each case gets a
fresh broker process. DUR (default 4s) is each step's publishing time;
NO_BUILD=1 skips rebuilding bin/mqttbench.
Rows go to stdout as they finish; JSON lines to results/bench-brokers.jsonl.

--v5 runs MQTT 5.0 with a few properties on every message (V5_PROPS: two
16-byte user properties, a content type, a one-minute message expiry). A
5.0 broker's Receive Maximum bounds each publisher's QoS 1/2 window
(mosquitto advertises 20), so a step can be unclean for a full window
where 3.1.1 let the broker queue; the JSON lines say what CONNACK allowed.
"""
import json, os, re, signal, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = os.path.join(ROOT, "bin", "mqttbench")
V5_PROPS = ["--protocol", "5", "--user-properties", "2", "--user-property-size", "16",
            "--content-type", "application/octet-stream", "--message-expiry", "60s"]
PATTERNS = {
    "fan-in":  dict(pubs=100, subs=1,   topic="bench/all", rates=[10000, 20000, 40000, 80000, 160000, 320000]),
    "fan-out": dict(pubs=1,   subs=100, topic="bench/all", rates=[500, 1000, 2000, 4000, 8000, 16000]),
    "p2p":     dict(pubs=100, subs=100, topic="bench/{p}", rates=[10000, 20000, 40000, 80000, 160000, 320000]),
}


def start(broker):
    if broker == "ref":
        # "listening on ADDR" comes on stdout; logs go to stderr.
        p = subprocess.Popen([MB, "broker", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        for _ in range(50):
            line = p.stdout.readline()
            m = re.search(r"127\.0\.0\.1:(\d+)", line)
            if m:
                return m.group(1), p.pid
        sys.exit("mqttbench broker printed no address")
    out = subprocess.check_output([os.path.join(ROOT, "scripts", "brokers", broker + ".sh"), "start"], text=True).split()
    return out[0], int(out[1])


def stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def once(port, pat, qos, rate, dur, extra):
    out = os.path.join(ROOT, "results", "bench-brokers-run")
    subprocess.run(["rm", "-rf", out])
    r = subprocess.run([MB, "load", "--broker", f"tcp://127.0.0.1:{port}", "--publishers", str(pat["pubs"]),
                        "--subscribers", str(pat["subs"]), "--topic", pat["topic"], "--qos", str(qos),
                        "--rate", str(rate), "--duration", dur, "--drain", "3s", "--quiet", "--out", out] + extra,
                       capture_output=True, text=True)
    try:
        s = json.load(open(os.path.join(out, "summary.json")))
    except OSError:
        return dict(rate=rate, code=r.returncode, error=r.stderr.strip()[-200:])
    m = s["messages"]
    lat = {x["metric"]: x for x in s["latency"]}
    return dict(rate=rate, code=r.returncode, sent=m["sent_per_second"], recv=m["received_per_second"],
                missed=m["missed"], missed_window=m["missed_window"], expected=m["expected"], received=m["received"],
                e2e50=lat["e2e"]["p50_us"], e2e99=lat["e2e"]["p99_us"], lag99=lat["send_lag"]["p99_us"],
                ack50=lat["publish_ack"]["p50_us"], ack99=lat["publish_ack"]["p99_us"],
                violations=s.get("violations") or [], errors=s.get("errors") or {},
                error_samples=s.get("error_samples") or {},
                reason_codes=s.get("reason_codes") or [], connack=s.get("connack"))


def clean(r, pat):
    if "error" in r:
        return False
    fan = pat["subs"] if pat["pubs"] == 1 else 1
    return (r["code"] == 0 and r["missed"] == 0 and r["received"] == r["expected"] and not r["violations"] and not r["errors"]
            and r["lag99"] < 10000 and r["recv"] >= 0.95 * r["sent"] * fan)


def main():
    args = [a for a in sys.argv[1:] if a != "--v5"]
    v5 = len(args) < len(sys.argv) - 1
    extra, proto = (V5_PROPS, "5.0") if v5 else ([], "3.1.1")
    brokers = (args[0] if len(args) > 0 else "ref,mosquitto,mochi").split(",")
    pats = (args[1] if len(args) > 1 else ",".join(PATTERNS)).split(",")
    qoss = [int(q) for q in (args[2] if len(args) > 2 else "0,1,2").split(",")]
    dur = os.environ.get("DUR", "4s")
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    if not os.environ.get("NO_BUILD"):  # NO_BUILD=1: use bin/mqttbench as it is
        subprocess.run(["go", "build", "-o", MB, "./cmd/mqttbench"], cwd=ROOT, check=True)
    log = open(os.path.join(ROOT, "results", "bench-brokers.jsonl"), "a")
    print(f"MQTT {proto}" + (" with " + " ".join(V5_PROPS[2:]) if v5 else ""))
    print(f"{'pattern':8} {'qos':>3} {'broker':10} {'clean rate':>10} {'delivered/s':>11} {'e2e p50':>9} {'e2e p99':>9} {'ack p99':>9}  first unclean")
    for pn in pats:
        pat = PATTERNS[pn]
        for q in qoss:
            for b in brokers:
                port, pid = start(b)
                best, fail = None, None
                try:
                    for rate in pat["rates"]:
                        r = once(port, pat, q, rate, dur, extra)
                        log.write(json.dumps(dict(broker=b, pattern=pn, qos=q, protocol=proto, **r)) + "\n")
                        log.flush()
                        if clean(r, pat):
                            best = r
                        else:
                            fail = r
                            break
                finally:
                    stop(pid)
                why = ""
                if fail:
                    errs = fail.get("errors") or {}
                    first = max(errs, key=errs.get) if errs else ""
                    why = f"{fail['rate']}: " + (fail.get("error") or
                        (f"{errs[first]} {first} errors ({fail['error_samples'].get(first, '')[:90]})" if errs else
                         f"{fail['expected'] - fail['received']} lost" if fail["received"] < fail["expected"] else
                         f"{fail['missed']} missed ({fail['missed_window']} window full)" if fail["missed"] else
                         f"lag p99 {fail['lag99'] / 1000:.1f} ms" if fail["lag99"] >= 10000 else "behind"))
                if best:
                    ack = f"{best['ack99'] / 1000:>7.1f}ms" if q > 0 else f"{'-':>9}"
                    print(f"{pn:8} {q:>3} {b:10} {best['rate']:>10} {best['recv']:>11.0f} {best['e2e50'] / 1000:>7.1f}ms {best['e2e99'] / 1000:>7.1f}ms {ack}  {why}", flush=True)
                else:
                    print(f"{pn:8} {q:>3} {b:10} {'-':>10} {'':>11} {'':>9} {'':>9} {'':>9}  {why}", flush=True)


main()
