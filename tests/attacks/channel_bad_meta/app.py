"""Sends a result frame whose metadata lies about its types ("types": ok and handler_us as the
wrong JSON types), is not JSON ("not_json"), or nests 30,000 levels deep ("deep"), then waits.
The daemon must treat it as a broken instance: a function error, never a service error, and its
capacity for the function must not leak."""
import os
import struct
import time

RESULT = 6


def handler(event, context):
    mode = event.get("mode", "types")
    if mode == "types":
        meta = b'{"ok": "yes", "handler_us": "soon"}'
    elif mode == "not_json":
        meta = b'{"ok": tru'
    else:
        meta = b"[" * 30000 + b"]" * 30000
    body = b'{"forged": true}'
    os.write(3, struct.pack("<III", RESULT, len(meta), len(body)) + meta + body)
    time.sleep(600)
