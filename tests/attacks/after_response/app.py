"""Work on the host's CPU that nobody asked for. mode "background": answers at once and leaves a
child process spinning after the response (an idle instance that keeps running would burn the
host's CPU unbilled). mode "spin": spins in the handler for `seconds` of wall time and reports
the CPU time it got (its quota: a 128 MB function gets 128/1769 of a core). Returns its uid, by
which the host finds its processes."""
import os
import time


def _spin_forever():
    while True:
        pass


def handler(event, context):
    mode = event.get("mode", "background")
    if mode == "background":
        if os.fork() == 0:
            try:
                _spin_forever()
            finally:
                os._exit(0)
        return {"uid": os.getuid()}
    end = time.monotonic() + float(event.get("seconds", 1))
    cpu0 = time.process_time()
    while time.monotonic() < end:
        pass
    return {"uid": os.getuid(), "cpu_ms": (time.process_time() - cpu0) * 1000}
