"""Floods its log. "burst": MB megabytes on stdout, then a last line, then returns. "background":
a thread that writes to stdout without end, left running after the response. "forever": writes
without end from WRITERS processes and never returns. "quiet": returns at once (the invocation after a background
flood). "closed": closes its stdout and stderr (the log pipe hangs up), then works SECONDS before
answering: the daemon waits for that answer asleep, not polling a hung-up pipe in a loop. What
the daemon keeps of the log must stay bounded, and the invocation must still end."""
import os
import threading
import time

LINE = (b"flood " * 1000)[:-1] + b"\n"


def _flood_forever(writers=1):
    for _ in range(writers - 1):  # more writers than the daemon has readers
        if os.fork() == 0:
            break
    while True:
        os.write(1, LINE * 16)


def handler(event, context):
    mode = event.get("mode", "burst")
    if mode == "burst":
        for _ in range(int(event.get("mb", 64)) * (1 << 20) // len(LINE)):
            os.write(1, LINE)
        os.write(1, b"FLOOD-END\n")
    elif mode == "background":
        threading.Thread(target=_flood_forever, daemon=True).start()
    elif mode == "closed":
        os.close(1)
        os.close(2)
        time.sleep(float(event.get("seconds", 1.5)))
    elif mode == "forever":
        _flood_forever(int(event.get("writers", 4)))
    return {"mode": mode}
