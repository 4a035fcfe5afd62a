"""Writes garbage to its channel to the daemon instead of a result: "random" bytes, or a
well-formed frame of a type the daemon never expects from an instance ("wrong_type"), then waits.
The daemon must end the instance at once (not at the timeout) and keep serving."""
import os
import struct
import time


def handler(event, context):
    if event.get("mode") == "wrong_type":
        os.write(3, struct.pack("<III", 5, 0, 0))  # an INVOKE, instance -> daemon
    else:
        os.write(3, b"\xff" * 12 + os.urandom(4084))
    time.sleep(600)
