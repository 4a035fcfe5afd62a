"""Breaks its channel mid-response: "partial_exit" sends half a frame and exits, "close_and_live"
closes the channel and keeps running. The daemon must end the instance at once (not at the
timeout) and answer with a function error."""
import os
import struct
import time


def handler(event, context):
    if event.get("mode", "partial_exit") == "partial_exit":
        meta = b'{"ok": true, "handler_us": 1}'
        os.write(3, struct.pack("<III", 6, len(meta), 1000) + meta + b"partial")
        os._exit(0)
    os.close(3)
    time.sleep(600)
