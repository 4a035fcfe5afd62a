"""A function whose import does ~300 ms of work (a table built at import time), like a handler
that loads a large library: what a snapshot restore saves."""
import hashlib
import os
import random
import time

_T0 = time.perf_counter()
# A fixed amount of work (~300 ms here), so every instance builds the same table.
TABLE = []
_h = hashlib.sha256()
for _i in range(2_000_000):
    _h.update(str(_i).encode())
    if _i % 1000 == 999:
        TABLE.append(_h.hexdigest()[:16])  # one entry per 1000 rounds: work, not memory
INIT_MS = (time.perf_counter() - _T0) * 1000
TOKEN = random.random()  # module state set during init
_STATE = {"calls": 0}


def handler(event, context):
    _STATE["calls"] += 1
    time.sleep(event.get("sleep_ms", 0) / 1000)  # to overlap concurrent invocations
    key = int(event.get("key", 7)) % len(TABLE)
    # What the handler writes to /tmp and memory stays its instance's own.
    marker = event.get("marker")
    if marker:
        with open("/tmp/" + marker, "w") as f:
            f.write(marker)
        _STATE["marker"] = marker
    return {"value": TABLE[key], "entries": len(TABLE), "calls": _STATE["calls"],
            "tmp": sorted(os.listdir("/tmp")), "marker": _STATE.get("marker"),
            "request_id": context.aws_request_id, "token": TOKEN, "init_ms": INIT_MS, "random": random.random()}
