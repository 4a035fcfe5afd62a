"""Looks for descriptors it should not have: the zygote's control socket (which would let it ask
for sandboxes of its own choosing), the daemon's sockets, host files. Reports every open fd with
what it points to and, for sockets, their type."""
import os
import socket


def handler(event, context):
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory listing's own fd, closed meanwhile
        info = {"target": target}
        if target.startswith("socket:"):
            s = socket.socket(fileno=os.dup(fd))
            info["type"] = {socket.SOCK_STREAM: "stream", socket.SOCK_SEQPACKET: "seqpacket",
                            socket.SOCK_DGRAM: "dgram"}.get(s.type, str(s.type))
            info["family"] = "unix" if s.family == socket.AF_UNIX else str(s.family)
            s.close()  # the dup only
        fds[str(fd)] = info
    return {"fds": fds}
