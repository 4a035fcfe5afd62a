"""Announces frames bigger than the protocol allows, or bigger than it sends: "huge" (4 GB meta
and payload: refused at once), "just_over" (one byte past the payload limit, never sent: a result
past Lambda's limit is drained for Function.ResponseSizeTooLarge, so this one waits out the
timeout), "stall" (a 1 MB payload of which it sends 10 bytes, then waits). The daemon never
allocates what was announced and never waits past the function's timeout."""
import os
import struct
import time

RESULT = 6
MAX_PAYLOAD = 6 * 1024 * 1024 + 1024


def handler(event, context):
    mode = event.get("mode", "huge")
    if mode == "huge":
        os.write(3, struct.pack("<III", RESULT, 0xFFFFFFFF, 0xFFFFFFFF))
    elif mode == "just_over":
        os.write(3, struct.pack("<III", RESULT, 2, MAX_PAYLOAD + 1) + b"{}")
    else:
        meta = b'{"ok": true, "handler_us": 1}'
        os.write(3, struct.pack("<III", RESULT, len(meta), 1 << 20) + meta + b"0123456789")
    time.sleep(600)
