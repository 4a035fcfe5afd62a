"""Opens descriptors until the kernel refuses, tries to raise its own limit, then closes them.
Reports how many it got and the errno that stopped it (RLIMIT_NOFILE: EMFILE)."""
import errno
import os
import resource
import socket


def handler(event, context):
    fds, stopped_by = [], None
    kinds = [lambda: os.open("/dev/null", os.O_RDONLY), lambda: socket.socket().detach(),
             lambda: os.eventfd(0)]
    while True:
        try:
            fds.append(kinds[len(fds) % len(kinds)]())
        except OSError as e:
            stopped_by = errno.errorcode.get(e.errno, str(e.errno))
            break
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard * 64, hard * 64))
        raised = "OK"
    except ValueError:  # Python's word for EPERM here
        raised = "EPERM"
    except OSError as e:
        raised = errno.errorcode.get(e.errno, str(e.errno))
    for fd in fds:
        os.close(fd)
    return {"opened": len(fds), "stopped_by": stopped_by, "limit": [soft, hard], "raise_limit": raised}
