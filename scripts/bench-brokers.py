#!/usr/bin/env python3
"""Broker throughput on loopback, the same client (mqttbench load) against
each broker in one run: fan-in (100 publishers -> 1 subscriber), fan-out
(1 -> 100) and point to point (100 -> 100) at QoS 0, 1 and 2, 64-byte
payloads. Each case is one `mqttbench load --find-max`: the offered rate
doubles from the pattern's start rate until a run is not clean (loss,
violations, connection errors, missed sends, deliveries behind while
publishing, or a saturated generator), or halves while the start rate is
not clean, then bisects to within 10%; the
table shows the highest clean rate (">=" when the generator, not the
broker, ran out first), messages delivered per second at it, and
end-to-end p50/p99. Each case's steps, knee.json and knee.html are kept in
results/bench-brokers/PROTOCOL/PATTERN-qosQ-BROKER.

  scripts/bench-brokers.py [--v5] [BROKERS [PATTERNS [QOS]]]
  scripts/bench-brokers.py ref,mosquitto,mochi fan-in,p2p 1

Every run tolerates MQTT-3.4.2-1 (`--tolerate`): mochi-mqtt 2.7.9 answers
each QoS 1 PUBLISH with PUBACK 0x01, a code PUBACK may not carry; the run
counts every such answer and goes on, so its throughput can stand beside
the others'. A row whose broker needed it says so; for a conformant broker
the flag changes nothing.

BROKERS: ref (mqttbench broker), mosquitto, mochi, aedes. Each case gets a
fresh broker process. DUR (default 4s) is each step's publishing time,
STEPS (default 12) the most steps per case; NO_BUILD=1 skips rebuilding
bin/mqttbench.
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
    "fan-in":  dict(pubs=100, subs=1,   topic="bench/all", start=10000),
    "fan-out": dict(pubs=1,   subs=100, topic="bench/all", start=500),
    "p2p":     dict(pubs=100, subs=100, topic="bench/{p}", start=10000),
}
STEPS = os.environ.get("STEPS", "12")


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


def knee(port, pat, qos, dur, extra, out):
    """One `mqttbench load --find-max` against the broker on port; its
    knee.json, or a dict with the error when it wrote none."""
    subprocess.run(["rm", "-rf", out])
    r = subprocess.run([MB, "load", "--broker", f"tcp://127.0.0.1:{port}", "--publishers", str(pat["pubs"]),
                        "--subscribers", str(pat["subs"]), "--topic", pat["topic"], "--qos", str(qos),
                        "--find-max", "--find-max-start", str(pat["start"]), "--find-max-steps", STEPS,
                        "--duration", dur, "--drain", "3s", "--tolerate", "MQTT-3.4.2-1", "--quiet", "--out", out] + extra,
                       capture_output=True, text=True)
    try:
        k = json.load(open(os.path.join(out, "knee.json")))
    except OSError:
        return dict(code=r.returncode, error=(r.stderr.strip().splitlines() or ["no knee.json"])[-1][:200])
    k["code"] = r.returncode
    return k


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
                out = os.path.join(ROOT, "results", "bench-brokers", proto, f"{pn}-qos{q}-{b}")
                port, pid = start(b)
                try:
                    k = knee(port, pat, q, dur, extra, out)
                finally:
                    stop(pid)
                log.write(json.dumps(dict(broker=b, pattern=pn, qos=q, protocol=proto, dir=out, **k)) + "\n")
                log.flush()
                if "error" in k:
                    print(f"{pn:8} {q:>3} {b:10} {'-':>10} {'':>11} {'':>9} {'':>9} {'':>9}  {k['error']}", flush=True)
                    continue
                a = k["answer"]
                why = ""
                if a.get("generator_saturated_at"):
                    why = f"generator saturated at {a['generator_saturated_at']:.0f}"
                elif a.get("first_unclean"):
                    why = f"{a['first_unclean']:.0f}: " + "; ".join(a.get("why_unclean") or [])[:110]
                step = next((s for s in k["steps"] if s["n"] == a.get("step")), None)
                tol = max((s.get("tolerated", 0) for s in k["steps"]), default=0)
                if tol:
                    why = f"(tolerated MQTT-3.4.2-1: PUBACK 0x01) {why}"

                if a["rate"] > 0 and step:
                    rate = (">=" if a.get("at_least") else "") + f"{a['rate']:.0f}"
                    ack = f"{step['publish_ack']['p99_us'] / 1000:>7.1f}ms" if q > 0 else f"{'-':>9}"
                    print(f"{pn:8} {q:>3} {b:10} {rate:>10} {step['delivered_rate']:>11.0f} {step['e2e']['p50_us'] / 1000:>7.1f}ms "
                          f"{step['e2e']['p99_us'] / 1000:>7.1f}ms {ack}  {why}", flush=True)
                else:
                    print(f"{pn:8} {q:>3} {b:10} {'-':>10} {'':>11} {'':>9} {'':>9} {'':>9}  {why or a.get('text', '')}", flush=True)


main()
