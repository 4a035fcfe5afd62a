"""Spins on every CPU it can get: PROCS processes busy for SECONDS, then stops them and returns.
Its CPU share must hold, so that its neighbours keep answering."""
import os
import signal
import time


def _spin(until):
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


def handler(event, context):
    seconds, procs = float(event.get("seconds", 5)), int(event.get("procs", 4))
    until = time.monotonic() + seconds
    children = []
    for _ in range(procs - 1):
        pid = os.fork()
        if pid == 0:
            _spin(until + 3600)
            os._exit(0)
        children.append(pid)
    loops = _spin(until)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {"loops": loops, "procs": procs}
