"""A fork bomb: starts processes until the kernel refuses, then reports how many it got and the
errno that stopped it (the instance's pids limit: EAGAIN), holds them `hold_s` seconds (so that
several instances flood at once), and kills them all."""
import errno
import os
import signal
import time


def handler(event, context):
    children = []
    stopped_by = None
    while len(children) < int(event.get("max", 100000)):
        try:
            children.append(os.posix_spawn("/usr/bin/sleep", ["sleep", "600"], {}))
        except OSError as e:
            stopped_by = errno.errorcode.get(e.errno, str(e.errno))
            break
    time.sleep(float(event.get("hold_s", 0)))
    # As its pid namespace's init, kill(-1) reaches every process it started.
    os.kill(-1, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
    return {"started": len(children), "stopped_by": stopped_by}
