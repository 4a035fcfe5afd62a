#!/usr/bin/python3
"""Measures cold, zygote and warm start latencies of one deployed function as a client sees
them (HTTP over loopback, keep-alive), with `python3 -c pass` measured in the same run; with
--restore-function, restores from a CRIU snapshot too (a deployment of the same code with
FORKLET_SNAPSHOT=on: its snapshot is awaited first).

usage: latency.py ENDPOINT FUNCTION [--cold N] [--zygote N] [--warm N]
                  [--restore-function FN --restore N] [--json FILE]
"""
import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
import urllib.parse


def percentile(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


class Client:
    def __init__(self, endpoint):
        u = urllib.parse.urlparse(endpoint)
        self.conn = http.client.HTTPConnection(u.hostname, u.port)

    def call(self, method, path, body=b""):
        self.conn.request(method, path, body=body)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def progress(label, i, n):
    if sys.stderr.isatty() or i == n:
        bar = "#" * int(30 * i / n)
        sys.stderr.write(f"\r  {label:<8} [{bar:<30}] {i}/{n}")
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()


def runtime_of(client, fn):
    _, _, body = client.call("GET", f"/2015-03-31/functions/{fn}")
    return json.loads(body).get("Configuration", {}).get("Runtime", "python3")


def wait_for_stem_cells(client, family):
    """A runtime with pre-booted instances (nodejs): its zygote start takes one; wait for the refill."""
    for _ in range(300):
        _, _, body = client.call("GET", "/forklet/v1/health")
        s = json.loads(body).get("stem_cells", {}).get(family)
        if not s or s["ready"] >= s["target"]:
            return
        time.sleep(0.02)


def settle(client, fn):
    """Before a cold sample: the previous start's aftermath done (the function's zygote booted
    after it, its successor forked ahead), so that a sample is not measured beside that work."""
    for _ in range(150):
        _, _, body = client.call("GET", "/forklet/v1/health")
        h = json.loads(body)
        bound = any(z.get("function") == fn for z in h.get("zygotes", []))
        forking = h.get("preforked", {}).get("forking", 0)
        if bound and not forking:
            return
        time.sleep(0.02)


def measure(client, fn, kind, n):
    lat, stages = [], {}
    runtime = runtime_of(client, fn)
    for i in range(n):
        if kind in ("cold", "zygote", "restore"):
            client.call("POST", f"/forklet/v1/admin/instances/drop?function={fn}")
        if kind == "cold":
            if not runtime.startswith("nodejs"):
                settle(client, fn)
            client.call("POST", f"/forklet/v1/admin/zygotes/{runtime}/drop")
        if kind == "zygote" and runtime.startswith("nodejs"):
            wait_for_stem_cells(client, "nodejs")
        t0 = time.perf_counter()
        status, headers, body = client.call("POST", f"/2015-03-31/functions/{fn}/invocations", b"{}")
        dt = (time.perf_counter() - t0) * 1000
        if status != 200 or "x-amz-function-error" in headers:
            raise SystemExit(f"invocation failed: {status} {body[:300]!r}")
        got = headers.get("x-forklet-start-kind")
        if got != kind:
            raise SystemExit(f"expected a {kind} start, the daemon reports {got}")
        lat.append(dt)
        for part in headers.get("x-forklet-stages", "").split():
            name, _, ms = part.partition("=")
            stages.setdefault(name, []).append(float(ms))
        progress(kind, i + 1, n)
    return lat, {k: statistics.median(v) for k, v in stages.items()}


def wait_for_snapshot(client, fn):
    client.call("POST", f"/2015-03-31/functions/{fn}/invocations", b"{}")  # its first start
    for _ in range(600):
        _, _, body = client.call("GET", "/forklet/v1/health")
        f = json.loads(body).get("snapshots", {}).get("functions", {}).get(fn, {})
        if "size_bytes" in f and not f.get("dumping"):
            return f["size_bytes"]
        time.sleep(0.1)
    raise SystemExit(f"no snapshot of {fn}: {json.loads(body).get('snapshots')}")


def python_baseline(n):
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/python3", "-c", "pass"], check=True)
        lat.append((time.perf_counter() - t0) * 1000)
        progress("python", i + 1, n)
    return lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("function")
    ap.add_argument("--cold", type=int, default=20)
    ap.add_argument("--zygote", type=int, default=100)
    ap.add_argument("--warm", type=int, default=1000)
    ap.add_argument("--restore-function")
    ap.add_argument("--restore", type=int, default=100)
    ap.add_argument("--json")
    a = ap.parse_args()
    client = Client(a.endpoint)
    client.call("POST", f"/2015-03-31/functions/{a.function}/invocations", b"{}")  # warm-up
    results = {}
    stages = {}
    print(f"measuring {a.function} at {a.endpoint}", file=sys.stderr)
    for kind, n in (("cold", a.cold), ("zygote", a.zygote), ("warm", a.warm)):
        if kind == "warm":
            client.call("POST", f"/2015-03-31/functions/{a.function}/invocations", b"{}")
        results[kind], stages[kind] = measure(client, a.function, kind, n)
    snapshot_bytes = None
    if a.restore_function:
        snapshot_bytes = wait_for_snapshot(client, a.restore_function)
        results["restore"], stages["restore"] = measure(client, a.restore_function, "restore", a.restore)
    results["python3 -c pass"] = python_baseline(max(a.cold, 20))
    base = statistics.median(results["python3 -c pass"])
    print()
    print(f"{'start':<16} {'n':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9} {'p50 / python3 -c':>17}")
    for kind, xs in results.items():
        print(f"{kind:<16} {len(xs):>5} {percentile(xs, 50):>9.3f} {percentile(xs, 90):>9.3f} "
              f"{percentile(xs, 99):>9.3f} {max(xs):>9.3f} {percentile(xs, 50) / base:>16.3f}x")
    print()
    print("where the time goes (daemon's stage breakdown, median ms):")
    for kind in [k for k in ("cold", "zygote", "warm", "restore") if k in stages]:
        parts = " ".join(f"{k}={v:.3f}" for k, v in stages[kind].items())
        print(f"  {kind:<7} {parts}")
    if snapshot_bytes is not None:
        print(f"snapshot of {a.restore_function}: {snapshot_bytes / 2**20:.1f} MB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"latency_ms": results, "stages_ms": stages, "snapshot_bytes": snapshot_bytes},
                      f, indent=1)


if __name__ == "__main__":
    main()
