"""A memory bomb: allocates and touches memory without end, in itself and in a child, until the
kernel stops it. The instance's memory limit must end it (Runtime.OutOfMemory) and nothing else.
{"mb": N} allocates only N MB and returns: the same function within its limit."""
import os

CHUNK = 16 << 20


def _hog(limit_mb):
    hog = []
    while limit_mb is None or len(hog) * 16 < limit_mb:
        hog.append(bytearray(b"\x01") * CHUNK)  # written, so resident
    return len(hog) * 16


def handler(event, context):
    if "mb" in event:
        return {"allocated_mb": _hog(int(event["mb"]))}
    if os.fork() == 0:
        _hog(None)
        os._exit(0)
    _hog(None)
    return {"survived": True}
