#!/usr/bin/env python3
"""Twelve concurrent CreateFunction calls with a 40 MB zip each against a running forkletd, retrying
on 429 as SDKs do; prints forkletd's RSS before, its peak (VmHWM) and after.
usage: tools/upload_burst.py PORT FORKLETD_PID   (deploys big0..big11: use a scratch state dir)"""
import base64, io, json, os, sys, threading, time, urllib.request, urllib.error, zipfile
port = int(sys.argv[1]); pid = int(sys.argv[2])
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
    z.writestr("app.py", "def handler(e, c):\n    return 1\n")
    z.writestr("blob.bin", os.urandom(40 << 20))
zb64 = base64.b64encode(b.getvalue()).decode()
def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field): return int(line.split()[1]) // 1024
codes = {}
def create(i):
    body = json.dumps({"FunctionName": f"big{i}", "Runtime": "python3.11", "Handler": "app.handler",
                       "Role": "r", "Code": {"ZipFile": zb64}}).encode()
    for attempt in range(60):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/2015-03-31/functions", data=body, method="POST")
        try:
            urllib.request.urlopen(req, timeout=120); codes[i] = (201, attempt); return
        except urllib.error.HTTPError as e:
            if e.code == 429:
                time.sleep(float(e.headers.get("Retry-After", "1"))); continue
            codes[i] = (e.code, attempt); return
print("rss before", status("VmRSS"), "MB")
t0 = time.time()
ts = [threading.Thread(target=create, args=(i,)) for i in range(12)]
[t.start() for t in ts]; [t.join() for t in ts]
print("12 creates of a 40 MB zip in %.1f s:" % (time.time() - t0), sorted(codes.values()))
time.sleep(1)
print("peak rss (VmHWM)", status("VmHWM"), "MB; rss after", status("VmRSS"), "MB")
