"""What a hostile neighbour would like to reach: an instance holding an abstract Unix socket,
SysV IPC objects, a POSIX message queue and a secret in its /tmp. Created once per instance and
kept while it is warm."""
import ctypes
import os
import socket

libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
HELD = {}


def _hold(event):
    if HELD:
        return
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + event["abstract_name"])
    s.listen(8)
    HELD["socket"] = s
    HELD["shm"] = libc.shmget(int(event["ipc_key"]), 4096, IPC_CREAT | 0o666)
    HELD["msg"] = libc.msgget(int(event["ipc_key"]), IPC_CREAT | 0o666)
    HELD["sem"] = libc.semget(int(event["ipc_key"]), 1, IPC_CREAT | 0o666)
    libc.mq_open.restype = ctypes.c_int
    HELD["mq"] = libc.mq_open(("/" + event["abstract_name"]).encode(), os.O_CREAT | os.O_RDWR,
                              0o666, None)
    with open("/tmp/" + event["secret_name"], "w") as f:
        f.write(event["secret"])
    os.chmod("/tmp/" + event["secret_name"], 0o666)


def handler(event, context):
    _hold(event)
    return {k: (v if isinstance(v, int) else "held") for k, v in HELD.items()}
