"""Answers the daemon's init with a hostile frame of its own, chosen by the MODE environment
variable: "deep" (an init error whose metadata nests 30,000 levels deep), "types" (a ready frame
whose init_us is a string), "wrong_type" (a result instead of ready), "garbage" (random bytes).
Then it exits. The function's init fails; the daemon answers with a function error and lives."""
import os
import struct

SETUP, READY, INIT_ERROR, RESULT = 1, 3, 4, 6
MODE = os.environ.get("MODE", "deep")

if MODE == "deep":
    meta = b'{"errorMessage": "deep", "errorType": "Deep", "nest": ' + b"[" * 30000 + b"]" * 30000 + b"}"
    os.write(3, struct.pack("<III", INIT_ERROR, len(meta), 0) + meta)
elif MODE == "types":
    meta = b'{"init_us": "later"}'
    os.write(3, struct.pack("<III", READY, len(meta), 0) + meta)
    import time
    time.sleep(600)
elif MODE == "wrong_type":
    meta = b'{"ok": true, "handler_us": 1}'
    os.write(3, struct.pack("<III", RESULT, len(meta), 2) + meta + b"{}")
else:
    os.write(3, os.urandom(4096))
os._exit(0)


def handler(event, context):
    return {}
