"""The soak's function: does what each request asks, so that one function gives every outcome."""
import os
import time


def handler(event, context):
    do = event.get("do", "ok")
    if do == "error":
        raise ValueError(f"handled error {event.get('n')}")
    if do == "crash":
        os._exit(1)
    if do == "oom":
        hog = []
        while True:
            hog.append(bytearray(b"\x01") * (16 << 20))
    if do == "timeout":
        while True:
            time.sleep(1)
    return {"ok": True, "n": event.get("n")}
