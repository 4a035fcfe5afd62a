"""Sends its result with descriptors attached (SCM_RIGHTS, 250 per message, over several
messages), hoping the daemon keeps them: a descriptor leak in the daemon would end in EMFILE for
everyone. The result itself is well formed, so the invocation succeeds."""
import array
import json
import os
import socket
import struct
import sys

RESULT = 6


def handler(event, context):
    runner = sys.modules["forklet_instance"]
    real_write = runner._write_frame

    def skip_once(*args, **kwargs):  # the runner's own result frame: already sent below
        runner._write_frame = real_write

    channel = socket.socket(fileno=os.dup(3))
    null = [os.open("/dev/null", os.O_RDONLY) for _ in range(250)]
    body = json.dumps({"passed_fds": 250 * int(event.get("messages", 4))}).encode()
    meta = json.dumps({"ok": True, "handler_us": 1}).encode()
    frame = struct.pack("<III", RESULT, len(meta), len(body)) + meta + body
    # One byte per message carries the descriptors; the frame arrives whole all the same.
    n = int(event.get("messages", 4))
    for i in range(n):
        chunk = frame[i:i + 1] if i < n - 1 else frame[n - 1:]
        channel.sendmsg([chunk], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", null))])
    for fd in null:
        os.close(fd)
    channel.close()
    runner._write_frame = skip_once
    return {}
