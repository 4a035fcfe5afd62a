#!/usr/bin/python3
"""Measures Event invocations on a running forkletd: what accepting one costs next to a warm
synchronous invocation (client round trip over loopback keep-alive, and the daemon's own time
for the synchronous one), and how fast N queued events drain compared with N synchronous
invocations from as many clients as the function's concurrency.

usage: events_bench.py ENDPOINT FUNCTION [--accept N] [--drain N] [--concurrency C]
FUNCTION should be a quick one (tools/examples/hello). The script sets and removes its reserved
concurrency (0 while events are accepted, so that none runs meanwhile; then C).
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


class Client:
    def __init__(self, endpoint):
        u = urllib.parse.urlparse(endpoint)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def call(self, method, path, body=b"", headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return r.status, dict(r.getheaders()), data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("function")
    ap.add_argument("--accept", type=int, default=2000)
    ap.add_argument("--drain", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--payload", default="{}", help="the events' payload (e.g. {\"seconds\": 0.1} for a sleep)")
    a = ap.parse_args()
    c = Client(a.endpoint)
    fn = a.function
    inv = f"/2015-03-31/functions/{fn}/invocations"
    conc = f"/2017-10-31/functions/{fn}/concurrency"

    # Warm synchronous invocations.
    c.call("POST", inv, b"{}")
    sync_rt, sync_daemon = [], []
    for _ in range(a.accept):
        t = time.perf_counter()
        s, h, _ = c.call("POST", inv, b"{}")
        sync_rt.append((time.perf_counter() - t) * 1000)
        sync_daemon.append(float(h.get("X-Forklet-Total-Ms", "nan")))
        assert s == 200, s

    # Accepting events (none runs: reserved concurrency 0).
    c.call("PUT", conc, json.dumps({"ReservedConcurrentExecutions": 0}).encode())
    c.call("POST", f"/forklet/v1/admin/instances/drop?function={fn}")  # an idle one would run them
    event_rt = []
    for _ in range(a.accept):
        t = time.perf_counter()
        s, _, body = c.call("POST", inv, a.payload.encode(), {"X-Amz-Invocation-Type": "Event"})
        event_rt.append((time.perf_counter() - t) * 1000)
        assert s == 202, (s, body)
    for _ in range(a.drain - a.accept):
        s, _, body = c.call("POST", inv, a.payload.encode(), {"X-Amz-Invocation-Type": "Event"})
        assert s == 202, (s, body)
    print(f"warm sync   round trip p50 {pct(sync_rt, 50):.3f} ms p99 {pct(sync_rt, 99):.3f} ms;"
          f" daemon time p50 {pct(sync_daemon, 50):.3f} ms")
    print(f"event 202   round trip p50 {pct(event_rt, 50):.3f} ms p99 {pct(event_rt, 99):.3f} ms"
          f" (ratio to the warm sync round trip: {pct(event_rt, 50) / pct(sync_rt, 50):.2f})")

    # Drain: open the function to C instances and time until the queue is empty.
    _, _, body = c.call("GET", "/forklet/v1/events")
    print(f"queued      {json.loads(body)['Functions'][fn]['depth']} events before the drain")
    t = time.perf_counter()
    c.call("PUT", conc, json.dumps({"ReservedConcurrentExecutions": a.concurrency}).encode())
    while True:
        _, _, body = c.call("GET", "/forklet/v1/events")
        e = json.loads(body)["Functions"].get(fn, {})
        if e.get("depth", 1) == 0 and e.get("in_flight", 1) == 0:
            break
        time.sleep(0.05)
    drain_s = time.perf_counter() - t
    print(f"drain       {a.drain} events at concurrency {a.concurrency}: {drain_s:.2f} s,"
          f" {a.drain / drain_s:.0f} events/s; succeeded {e.get('succeeded')}, dropped {e.get('dropped')}")

    # The same number of synchronous invocations from C clients.
    per = a.drain // a.concurrency
    def worker():
        w = Client(a.endpoint)
        for _ in range(per):
            w.call("POST", inv, a.payload.encode())
    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    sync_s = time.perf_counter() - t
    print(f"sync        {per * a.concurrency} invocations from {a.concurrency} clients: {sync_s:.2f} s,"
          f" {per * a.concurrency / sync_s:.0f} invocations/s")
    c.call("DELETE", conc)


if __name__ == "__main__":
    main()
