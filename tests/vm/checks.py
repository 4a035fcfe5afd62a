#!/usr/bin/env python3
"""The VM suite's checks, run inside the guest (systemd as PID 1, cgroup v2 only) against the
forkletd that systemd starts from the unit of the installed .deb. One line per check:
"PASS name: detail" or "FAIL name: detail"; exit status 1 if any failed."""
import base64
import io
import json
import os
import sqlite3
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
import zipfile

CONFIG = "/etc/forklet/forkletd.json"
STATE = "/var/lib/forklet"
CG = "/sys/fs/cgroup"
MIB = 1024 * 1024
FORKLET_EXES = ("/usr/bin/forkletd", "/usr/libexec/forklet/")

with open(CONFIG) as f:
    LISTEN = json.load(f)["listen"]
EP = "http://" + LISTEN
failures = []


def check(name):
    """Runs one check; it returns its detail line or raises AssertionError with the reason."""
    def wrap(fn):
        t0 = time.monotonic()
        try:
            detail = fn()
            print(f"PASS {name}: {detail} ({time.monotonic() - t0:.0f} s)", flush=True)
        except Exception as e:  # a check's failure is its line, never the end of the suite
            failures.append(name)
            why = str(e) if isinstance(e, AssertionError) else traceback.format_exc(limit=3)
            print(f"FAIL {name}: {why}".replace("\n", "\n    "), flush=True)
        return fn
    return wrap


def sh(*argv, check_rc=True, timeout=600):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return r.stdout.strip()


def unit(prop):
    return sh("systemctl", "show", "-p", prop, "--value", "forkletd")


def call(method, path, body=None, headers=None, timeout=300):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(EP + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def api(method, path, body=None):
    status, _, out = call(method, path, body)
    assert 200 <= status < 300, f"{method} {path}: {status} {out[:300]!r}"
    return json.loads(out) if out else {}


def deploy(name, code, memory=128, timeout=120):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", code)
    call("DELETE", f"/2015-03-31/functions/{name}")
    return api("POST", "/2015-03-31/functions", {
        "FunctionName": name, "Runtime": "python3.11", "Handler": "app.handler",
        "Role": "arn:aws:iam::000000000000:role/x", "MemorySize": memory, "Timeout": timeout,
        "Code": {"ZipFile": base64.b64encode(buf.getvalue()).decode()}})


def invoke(name, payload=None, timeout=300):
    """(status, function error type or None, body as JSON, request id)."""
    status, headers, out = call("POST", f"/2015-03-31/functions/{name}/invocations",
                                payload or {}, timeout=timeout)
    h = {k.lower(): v for k, v in headers.items()}
    body = json.loads(out) if out else None
    err = None
    if "x-amz-function-error" in h:
        err = body.get("errorType") if isinstance(body, dict) else "?"
    return status, err, body, h.get("x-amzn-requestid")


def invoke_ok(name, payload=None):
    status, err, body, rid = invoke(name, payload)
    assert status == 200 and err is None, f"invoke {name}: {status} {err} {body}"
    return body, rid


def ledger_row(rid):
    """The ledger's record of one request (it reaches SQLite within ~100 ms)."""
    for _ in range(100):
        db = sqlite3.connect(f"file:{STATE}/ledger.db?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("select * from invocations where request_id = ?", (rid,)).fetchone()
        except sqlite3.OperationalError:
            row = None
        db.close()
        if row:
            return dict(row)
        time.sleep(0.2)
    raise AssertionError(f"no ledger row for request {rid}")


def ledger_count():
    db = sqlite3.connect(f"file:{STATE}/ledger.db?mode=ro", uri=True, timeout=10)
    n = db.execute("select count(*) from invocations").fetchone()[0]
    db.close()
    return n


def read(path):
    with open(path) as f:
        return f.read().strip()


def cgroup_of(pid):
    for line in read(f"/proc/{pid}/cgroup").splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"pid {pid}: no v2 cgroup")


def idle_pids():
    return api("GET", "/forklet/v1/health")["instances"]["idle_pids"]


def drop_idle():
    api("POST", "/forklet/v1/admin/instances/drop")


def forklet_cgroups():
    """Every cgroup directory named forklet.* anywhere in the hierarchy."""
    out = []
    for d, dirs, _ in os.walk(CG):
        out += [os.path.join(d, x) for x in dirs if x.startswith("forklet.")]
    return out


def forklet_processes():
    """pid -> (exe, cgroup) of every process running forklet's binaries or inside its unit."""
    procs = {}
    unit_cg = "/system.slice/forkletd.service"
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{p}/exe")
            cg = cgroup_of(p)
        except (OSError, AssertionError):
            continue  # kernel threads, or gone
        if exe.startswith(FORKLET_EXES) or cg == unit_cg or cg.startswith(unit_cg + "/"):
            procs[int(p)] = (exe, cg)
    return procs


def forklet_mounts():
    return [l for l in read("/proc/self/mountinfo").splitlines() if "forklet" in l]


# Interface files the daemon must never write outside its unit's cgroup.
WATCHED = ("cgroup.subtree_control", "cgroup.freeze", "cgroup.max.descendants", "cgroup.max.depth",
           "cgroup.type", "memory.max", "memory.high", "memory.low", "memory.min",
           "memory.swap.max", "pids.max", "cpu.weight", "cpu.max")


def outside_snapshot():
    """Every cgroup outside forkletd's and this suite's units, with its settings."""
    snap = {}
    for d, dirs, _ in os.walk(CG):
        rel = d[len(CG):] or "/"
        if rel.startswith(("/system.slice/forkletd.service", "/system.slice/forklet-vm-")):
            dirs[:] = []
            continue
        vals = {}
        for f in WATCHED:
            try:
                vals[f] = read(os.path.join(d, f))
            except OSError:
                pass
        snap[rel] = vals
    return snap


HELLO = "def handler(event, context):\n    return {'hello': event.get('a')}\n"
WHOAMI = "import os\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"
BOMB = """
def handler(event, context):
    hog = []
    for _ in range(int(event.get('mb', 1024)) // 16):
        hog.append(b'\\x01' * (16 << 20))  # written, so resident
    return {'survived_mb': len(hog) * 16}
"""
FORKS = """
import os, signal, time
def handler(event, context):
    kids, err, t0 = [], None, time.monotonic()
    while time.monotonic() - t0 < float(event.get('budget_s', 240)):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno
            break
        if pid == 0:
            signal.pause()  # holds its pid until killed
            os._exit(0)
        kids.append(pid)
    took = time.monotonic() - t0
    for k in kids:
        os.kill(k, 9)
    for k in kids:
        os.waitpid(k, 0)
    return {'forked': len(kids), 'errno': err, 'seconds': round(took, 1)}
"""
BURN = """
import time
def handler(event, context):
    t0 = time.process_time()
    while time.process_time() - t0 < float(event.get('cpu_s', 1.0)):
        sum(range(1000))
    return {'cpu_ms': (time.process_time() - t0) * 1000}
"""
SLOW = """
import time
def handler(event, context):
    time.sleep(float(event.get('s', 8)))
    return {'slept': event.get('s', 8)}
"""

# The reference: cgroups outside forklet's unit, with a delegated unit of ours running so that
# systemd has already enabled in system.slice what delegating takes (its writes, not forklet's).
sh("systemd-run", "--unit=forklet-vm-baseline", "-p", "Delegate=yes", "sleep", "infinity")
time.sleep(1)
BEFORE = outside_snapshot()
MOUNTS_BEFORE = forklet_mounts()


@check("ready")
def _():
    assert unit("Type") == "notify", f"unit Type={unit('Type')}"
    t0 = time.monotonic()
    sh("systemctl", "start", "--no-block", "forkletd")
    states = []
    while time.monotonic() - t0 < 600:
        state = unit("ActiveState")
        if not states or states[-1] != state:
            states.append(state)
        if state == "active":
            # active means READY=1 came: the API must answer at once, and ready.
            status, _, out = call("GET", "/forklet/v1/health", timeout=10)
            assert status == 200, f"active but the API answers {status} {out[:200]!r}"
            health = json.loads(out)
            assert health["status"] == "ready", f"active but health says {health['status']}"
            break
        if state in ("failed", "inactive") and "activating" in states:
            raise AssertionError(f"start failed: states {states}; " + sh(
                "journalctl", "-u", "forkletd", "-n", "30", "--no-pager", check_rc=False))
        time.sleep(0.05)
    else:
        raise AssertionError(f"not active after 600 s: states {states}")
    assert "activating" in states, f"never seen activating before active: {states}"
    return (f"{' -> '.join(states)} after {time.monotonic() - t0:.1f} s; API answered at once; "
            f"status \"{unit('StatusText')}\"")


@check("code-images")
def _():
    # Debian's kernel has EROFS as a module: the package must get it loaded (modules-load.d).
    # File-backed EROFS mounts need Linux 6.12+; before that forkletd says so and bind-mounts.
    log = sh("journalctl", "-u", "forkletd", "--no-pager", "-o", "cat")
    off = [l for l in log.splitlines() if "code images off" in l]
    assert not any("has no EROFS" in l for l in off), off[0]
    if off:
        return "EROFS loaded; code images off for the kernel's age: " + off[0].split(": ", 2)[-1][:120]
    return "EROFS loaded: each code revision is mounted from its image"


@check("delegation")
def _():
    unit_cg = unit("ControlGroup")
    assert unit_cg == "/system.slice/forkletd.service", f"ControlGroup={unit_cg}"
    assert unit("Delegate") == "yes", "unit has no Delegate=yes"
    main = int(unit("MainPID"))
    assert cgroup_of(main) == unit_cg + "/supervisor", f"forkletd is in {cgroup_of(main)}"
    roots = forklet_cgroups()
    outside = [r for r in roots if not r.startswith(CG + unit_cg + "/")]
    assert not outside, f"forklet cgroups outside the unit: {outside}"
    tops = [r for r in roots if os.path.dirname(r) == CG + unit_cg]
    assert len(tops) == 1, f"expected one forklet.<tag> below the unit, found {tops}"
    for d, want in ((CG + unit_cg, "memory pids cpu"), (tops[0], "memory pids cpu")):
        have = read(d + "/cgroup.subtree_control").split()
        missing = [c for c in want.split() if c not in have]
        assert not missing, f"{d}/cgroup.subtree_control lacks {missing}: {have}"
    stray = {p: v for p, v in forklet_processes().items()
             if not v[1].startswith(unit_cg + "/")}
    assert not stray, f"forklet processes outside the unit's subtree: {stray}"
    return f"forkletd in {unit_cg}/supervisor, tree {tops[0][len(CG):]}, " \
           f"{len(forklet_processes())} processes all below the unit"


def instance_cgroup(function, payload=None):
    """Invokes `function` once with no other idle instance and returns its instance's cgroup dir."""
    drop_idle()
    body, _ = invoke_ok(function, payload)
    pids = idle_pids()
    assert len(pids) == 1, f"idle pids after one invocation of {function}: {pids}"
    return CG + cgroup_of(pids[0]), body


@check("memory.max")
def _():
    out = []
    deploy("hello", HELLO, memory=128)
    for name, mb in (("whoami128", 128), ("whoami300", 300)):
        deploy(name, WHOAMI, memory=mb)
        d, _ = instance_cgroup(name)
        tree = os.path.dirname(d)
        assert os.path.basename(tree).startswith("forklet."), f"instance cgroup {d} not in the tree"
        got = {f: read(f"{d}/{f}") for f in ("memory.max", "memory.swap.max", "pids.max")}
        assert got["memory.max"] == str(mb * MIB), f"{name}: memory.max {got['memory.max']} != {mb * MIB}"
        assert got["memory.swap.max"] == "0", f"{name}: memory.swap.max {got['memory.swap.max']}"
        out.append(f"{mb} MB -> memory.max {got['memory.max']}, swap 0, pids.max {got['pids.max']}")
    return "; ".join(out)


@check("cpu.max+freeze")
def _():
    out = []
    for name, mb in (("whoami128", 128), ("whoami300", 300)):
        d, _ = instance_cgroup(name)
        # Lambda's CPU in proportion to memory: a full core at 1769 MB; quota never under 1/4 core.
        permille = max(1, 1000 * mb // 1769)
        shares = max(2, permille * 1024 // 1000)
        want_max = f"{max(250, permille) * 100} 100000"
        want_weight = str(1 + (shares - 2) * 9999 // 262142)
        got_max, got_weight = read(d + "/cpu.max"), read(d + "/cpu.weight")
        assert got_max == want_max, f"{name}: cpu.max {got_max!r}, expected {want_max!r}"
        assert got_weight == want_weight, f"{name}: cpu.weight {got_weight}, expected {want_weight}"
        # An idle instance is frozen from 50 ms after its response.
        for _ in range(50):
            events = dict(l.split() for l in read(d + "/cgroup.events").splitlines())
            if events.get("frozen") == "1":
                break
            time.sleep(0.1)
        assert events.get("frozen") == "1", f"{name}: idle instance not frozen: {events}"
        out.append(f"{mb} MB -> cpu.max {got_max}, cpu.weight {got_weight}, idle frozen")
    invoke_ok("whoami300")  # and a frozen instance thaws for its next invocation
    return "; ".join(out) + "; thawed for the next invocation"


@check("oom")
def _():
    deploy("bomb", BOMB, memory=128)
    main = unit("MainPID")
    others, stop = [], threading.Event()

    def serve():  # another function keeps being served while the bomb goes off
        while not stop.is_set():
            others.append(invoke("hello", {"a": 1})[:2])
            time.sleep(0.1)

    t = threading.Thread(target=serve)
    t.start()
    try:
        status, err, body, rid = invoke("bomb", {"mb": 1024})
    finally:
        stop.set()
        t.join()
    assert err == "Runtime.OutOfMemory", f"bomb answered {status} {err} {body}"
    row = ledger_row(rid)
    assert row["outcome"] == "oom", f"ledger outcome {row['outcome']}"
    bad = [o for o in others if o != (200, None)]
    assert others and not bad, f"hello during the bomb: {len(others)} calls, failed {bad[:3]}"
    body, _ = invoke_ok("bomb", {"mb": 32})  # the function itself recovers: a new instance
    assert unit("MainPID") == main, "forkletd restarted"
    return (f"Runtime.OutOfMemory, ledger outcome oom, max memory {row['max_memory_mb']} MB; "
            f"{len(others)} invocations of hello meanwhile all 200; bomb serves again")


@check("pids.max")
def _():
    deploy("forks", FORKS, memory=1769, timeout=600)  # a full core
    d, body = instance_cgroup("forks")
    limit = int(read(d + "/pids.max"))
    events = dict(l.split() for l in read(d + "/pids.events").splitlines())
    assert body["errno"] == 11, \
        f"fork stopped by errno {body['errno']} after {body['forked']} in {body['seconds']} s"
    assert limit - 16 <= body["forked"] < limit, f"forked {body['forked']} with pids.max {limit}"
    assert int(events.get("max", 0)) > 0, f"pids.events: {events}"
    invoke_ok("hello", {"a": 2})
    return f"fork bomb stopped at {body['forked']} children in {body['seconds']} s by pids.max {limit} (EAGAIN), " \
           f"pids.events max {events['max']}; others still served"


@check("cpu")
def _():
    deploy("burn", BURN, memory=1024)
    body, rid = invoke_ok("burn", {"cpu_s": 1.0})
    row = ledger_row(rid)
    own = body["cpu_ms"]
    assert own * 0.9 <= row["cpu_ms"] <= own * 1.5 + 200, \
        f"ledger cpu_ms {row['cpu_ms']} vs the function's own {own:.0f} ms"
    return f"ledger cpu_ms {row['cpu_ms']:.0f} for a function that measured {own:.0f} ms of CPU"


@check("reload")
def _():
    main = unit("MainPID")
    with open(CONFIG) as f:
        original = f.read()
    cfg = json.loads(original)
    cfg["max-concurrency"], cfg["keep-alive"] = 3, 300
    try:
        with open(CONFIG, "w") as f:
            json.dump(cfg, f)
        sh("systemctl", "reload", "forkletd")
        for _ in range(100):
            cap = api("GET", "/forklet/v1/capacity")
            if cap["max_concurrency"] == 3 and cap["keep_alive_s"] == 300:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"after reload: {cap}")
    finally:
        with open(CONFIG, "w") as f:
            f.write(original)
    sh("systemctl", "reload", "forkletd")
    assert unit("MainPID") == main, "reload restarted the daemon"
    return "max-concurrency 10 -> 3, keep-alive 600 -> 300 applied live, same pid"


@check("aws-cli")
def _():
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
               AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run(
        ["aws", "lambda", "invoke", "--endpoint-url", EP, "--function-name", "hello",
         "--payload", '{"a": 42}', "--cli-binary-format", "raw-in-base64-out", "/tmp/aws-out.json"],
        capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, f"aws exited {out.returncode}: {out.stderr[-500:]}"
    got = json.loads(read("/tmp/aws-out.json"))
    assert got == {"hello": 42}, f"aws got {got}"
    version = subprocess.run(["aws", "--version"], capture_output=True, text=True).stdout.split()[0]
    return f"{version} invoked hello through {EP}: {got}"


@check("kill-recover")
def _():
    functions = sorted(f["FunctionName"] for f in api("GET", "/2015-03-31/functions/")["Functions"])
    invoke_ok("hello", {"a": 3})
    invoke_ok("whoami128")
    time.sleep(0.5)
    rows = ledger_count()
    old = forklet_processes()
    old_leaves = {d for r in forklet_cgroups() for d, sub, _ in os.walk(r) if not sub}
    main = unit("MainPID")
    sh("systemctl", "kill", "-s", "KILL", "forkletd")
    for _ in range(600):  # systemd notices, and Restart=on-failure may start it again by itself
        if unit("MainPID") != main:
            break
        time.sleep(0.1)
    sh("systemctl", "start", "forkletd")
    assert unit("ActiveState") == "active", f"after start: {unit('ActiveState')}"
    survivors = [p for p in old if os.path.exists(f"/proc/{p}")
                 and p in forklet_processes() and forklet_processes()[p] == old[p]]
    assert not survivors, f"processes of the killed daemon still run: {survivors}"
    now = sorted(f["FunctionName"] for f in api("GET", "/2015-03-31/functions/")["Functions"])
    assert now == functions, f"functions {functions} -> {now}"
    body, rid = invoke_ok("hello", {"a": 4})
    ledger_row(rid)
    assert ledger_count() >= rows + 1, f"ledger: {rows} rows before the kill, {ledger_count()} after"
    # The restarted daemon adopts its predecessor's tree (same tag) and empties it: what is left
    # is its own (pool, zygotes, the instance that just answered), none of the killed instances'.
    tree = [r for r in forklet_cgroups() if os.path.dirname(r) == CG + "/system.slice/forkletd.service"]
    assert len(tree) == 1, f"trees below the unit after the restart: {tree}"
    stale = [d for d, _, _ in os.walk(tree[0]) if d in old_leaves and not read(d + "/cgroup.procs")]
    assert not stale, f"empty cgroups of the killed daemon left: {stale}"
    stray = {p: v for p, v in forklet_processes().items() if not v[1].startswith(
        "/system.slice/forkletd.service/")}
    assert not stray, f"orphans: {stray}"
    return f"killed {len(old)} processes; restarted, {len(now)} functions and {rows} ledger rows " \
           f"kept, old tree gone, no orphans"


@check("stop-drains")
def _():
    deploy("slow", SLOW, memory=128)
    result = {}

    def run():
        result["r"] = invoke("slow", {"s": 8})

    t = threading.Thread(target=run)
    t.start()
    for _ in range(600):
        if api("GET", "/forklet/v1/capacity")["in_flight"] >= 1:
            break
        time.sleep(0.1)
    time.sleep(1)  # well inside the handler
    t0 = time.monotonic()
    sh("systemctl", "stop", "forkletd")
    took = time.monotonic() - t0
    t.join()
    status, err, body, _ = result["r"]
    assert status == 200 and err is None and body == {"slept": 8}, f"in-flight got {status} {err} {body}"
    assert unit("ActiveState") == "inactive", f"after stop: {unit('ActiveState')}"
    assert unit("Result") == "success", f"Result={unit('Result')}, exit {unit('ExecMainStatus')}"
    assert not os.path.exists(CG + "/system.slice/forkletd.service"), \
        f"the unit's cgroup is left: {os.listdir(CG + '/system.slice/forkletd.service')}"
    assert not forklet_cgroups(), f"cgroups left: {forklet_cgroups()}"
    assert not forklet_processes(), f"processes left: {forklet_processes()}"
    left = [m for m in forklet_mounts() if m not in MOUNTS_BEFORE]
    assert not left, f"mounts left: {left}"
    return f"the in-flight invocation finished (200) during a {took:.1f} s stop; exit 0; " \
           "no cgroup, process or mount left"


@check("outside-untouched")
def _():
    after = outside_snapshot()
    changed = [f"{d}/{f}: {v!r} -> {after[d].get(f)!r}" for d, vals in BEFORE.items()
               if d in after for f, v in vals.items() if after[d].get(f) != v]
    new = [d for d in after if d not in BEFORE and "forklet" in d]
    assert not changed and not new, f"changed outside the unit: {changed[:5]} new: {new[:5]}"
    return f"{len(BEFORE)} cgroups outside forkletd.service: none created or changed"


sh("systemctl", "stop", "forklet-vm-baseline", check_rc=False)
print(f"checks: {'all passed' if not failures else 'FAILED: ' + ' '.join(failures)}", flush=True)
raise SystemExit(1 if failures else 0)
