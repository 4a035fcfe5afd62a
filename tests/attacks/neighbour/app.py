"""The bystander: answers while attacks run next to it. Its token is made once per instance, so
the same token across invocations means the same instance survived the attack."""
import os
import time
import uuid

TOKEN = uuid.uuid4().hex


def handler(event, context):
    t0 = time.perf_counter()
    if event.get("write_tmp_mb"):  # its own /tmp still takes writes while a neighbour fills its own
        with open("/tmp/neighbour", "wb") as f:
            f.write(b"n" * (int(event["write_tmp_mb"]) << 20))
        os.unlink("/tmp/neighbour")
    # A little fixed work, timed by the handler itself (the CPU share check reports it).
    sum(range(20000))
    return {"instance": TOKEN, "uid": os.getuid(), "work_ms": (time.perf_counter() - t0) * 1000}
