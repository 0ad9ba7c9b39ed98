#!/usr/bin/env python3
"""QoS 1 point to point through the reference broker in memory and with a
data dir (--fsync always, interval=100ms): the highest clean offered rate of
each, and its ratio to the in-memory one. Loopback only.

  scripts/bench-durable.py [MODES [RATES]]
  scripts/bench-durable.py memory,always,interval=100ms 20000,30000,40000

100 publishers -> 100 subscribers, one topic each, 64-byte payloads,
persistent sessions (--clean-session=false: a clean session is never
stored, so it would measure nothing). Every step gets a fresh broker
process and an empty data dir in /tmp (persistent sessions of an earlier
step would still be subscribed). A step is clean as in bench-brokers.py: no
missed sends, nothing lost, no violations or errors, generator lag p99
under 10 ms, at least 95% delivered during publishing. The modes take
turns at each rate, so a busy machine slows them alike; REPEAT (default 2)
runs each step that often and keeps the best. DUR (default 4s) is each
step's publishing time; LAG_MS (default 10) the lag p99 limit, to be
raised on a machine shared with other work; KEEP_GOING=1 tries every
rate even after an unclean one (a burst of other work can spoil a step). The broker's CPU time per
message delivered (user + system, from /proc) is shown too: unlike the
rates it hardly moves with what else runs on the machine. JSON lines go
to results/bench-durable.jsonl. MQTTBENCH names a binary to use instead of
building bin/mqttbench.
"""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = os.environ.get("MQTTBENCH") or os.path.join(ROOT, "bin", "mqttbench")
LAG_MS = float(os.environ.get("LAG_MS", "10"))
KEEP_GOING = os.environ.get("KEEP_GOING") == "1"


def start(mode):
    args = [MB, "broker", "--listen", "127.0.0.1:0"]
    data = None
    if mode != "memory":
        data = tempfile.mkdtemp(prefix="mqttbench-durable-")
        args += ["--data-dir", data, "--fsync", mode]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for _ in range(50):
        m = re.search(r"127\.0\.0\.1:(\d+)", p.stdout.readline())
        if m:
            return m.group(1), p, data
    sys.exit("mqttbench broker printed no address")


def stop(p, data):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if data:
        shutil.rmtree(data, ignore_errors=True)


def broker_cpu(pid):
    """CPU seconds (user + system) the broker process has used."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def once(mode, rate, dur):
    port, p, data = start(mode)
    out = os.path.join(ROOT, "results", "bench-durable-run")
    shutil.rmtree(out, ignore_errors=True)
    try:
        subprocess.run([MB, "load", "--broker", f"tcp://127.0.0.1:{port}", "--publishers", "100", "--subscribers", "100",
                        "--topic", "bench/{p}", "--qos", "1", "--clean-session=false", "--rate", str(rate),
                        "--duration", dur, "--drain", "3s", "--quiet", "--out", out], capture_output=True, text=True)
        cpu = broker_cpu(p.pid)
    finally:
        stop(p, data)
    try:
        s = json.load(open(os.path.join(out, "summary.json")))
    except OSError:
        return dict(mode=mode, rate=rate, clean=False, error="no summary")
    m = s["messages"]
    lat = {x["metric"]: x for x in s["latency"]}
    r = dict(mode=mode, rate=rate, sent=m["sent_per_second"], recv=m["received_per_second"], missed=m["missed"],
             lost=m["expected"] - m["received"], lag99=lat["send_lag"]["p99_us"], ack50=lat["publish_ack"]["p50_us"],
             ack99=lat["publish_ack"]["p99_us"], e2e99=lat["e2e"]["p99_us"],
             errors=s.get("errors") or {}, violations=len(s.get("violations") or []),
             cpu_us=1e6 * cpu / max(1, m["received"]))
    r["clean"] = (r["missed"] == 0 and r["lost"] == 0 and not r["errors"] and not r["violations"]
                  and r["lag99"] < LAG_MS * 1000 and r["recv"] >= 0.95 * r["sent"])
    return r


def main():
    modes = (sys.argv[1] if len(sys.argv) > 1 else "memory,always,interval=100ms").split(",")
    rates = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "10000,20000,30000,40000,50000,60000").split(",")]
    dur = os.environ.get("DUR", "4s")
    repeat = int(os.environ.get("REPEAT", "2"))
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    if not os.environ.get("MQTTBENCH"):
        subprocess.run(["go", "build", "-o", MB, "./cmd/mqttbench"], cwd=ROOT, check=True)
    log = open(os.path.join(ROOT, "results", "bench-durable.jsonl"), "a")
    best = {m: None for m in modes}
    failed = set()
    for rate in rates:
        for mode in modes:
            if mode in failed:
                continue
            r = None
            for _ in range(repeat):
                r = once(mode, rate, dur)
                log.write(json.dumps(r) + "\n")
                log.flush()
                if r["clean"]:
                    break
            print(f"{mode:16} {rate:>7} {'clean' if r['clean'] else 'UNCLEAN':7} delivered/s {r.get('recv', 0):>8.0f}"
                  f"  ack p50/p99 {r.get('ack50', 0) / 1000:6.1f}/{r.get('ack99', 0) / 1000:6.1f} ms"
                  f"  lag p99 {r.get('lag99', 0) / 1000:6.1f} ms  broker CPU {r.get('cpu_us', 0):5.1f} us/msg", flush=True)
            if r["clean"]:
                best[mode] = r
            elif not KEEP_GOING:
                failed.add(mode)
    base = best.get("memory")
    print(f"\n{'mode':16} {'clean rate':>10} {'delivered/s':>11} {'vs memory':>9} {'ack p50':>8} {'ack p99':>8} {'CPU/msg':>9}")
    for mode in modes:
        b = best[mode]
        if not b:
            print(f"{mode:16} {'-':>10}")
            continue
        ratio = f"{100 * b['rate'] / base['rate']:.0f}%" if base else "-"
        print(f"{mode:16} {b['rate']:>10} {b['recv']:>11.0f} {ratio:>9} {b['ack50'] / 1000:>6.1f}ms {b['ack99'] / 1000:>6.1f}ms {b['cpu_us']:>7.1f}us")


main()
