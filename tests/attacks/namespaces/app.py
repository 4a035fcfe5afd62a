"""Tries to make or join namespaces, the usual first step of a container escape: unshare of every
kind (a user namespace would hand it every capability inside), clone and clone3 with namespace
flags, setns. Reports the errno of each (OK means it worked)."""
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_clone, SYS_unshare, SYS_setns, SYS_clone3 = 56, 272, 308, 435
FLAGS = {"user": 0x10000000, "mnt": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000,
         "pid": 0x20000000, "net": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080}
SIGCHLD = 17


def _sys(nr, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if rc == 0 and nr == SYS_clone:
        os._exit(0)  # the child of a clone that should not have worked: leave at once
    if rc > 0 and nr == SYS_clone:
        os.waitpid(rc, 0)
    return "OK" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def handler(event, context):
    r = {"unshare": {}, "clone": {}, "setns": {}}
    for name, flag in FLAGS.items():
        r["unshare"][name] = _sys(SYS_unshare, flag)
        if name != "time":  # clone's low byte is the exit signal: CLONE_NEWTIME is unshare-only
            r["clone"][name] = _sys(SYS_clone, flag | SIGCHLD, 0, 0, 0, 0)
    for name in ("user", "mnt", "net", "pid", "ipc", "uts", "cgroup"):
        fd = os.open(f"/proc/self/ns/{name}", os.O_RDONLY)
        r["setns"][name] = _sys(SYS_setns, fd, 0)
        os.close(fd)
    args = (ctypes.c_uint64 * 11)(FLAGS["user"], 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, 0)
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(SYS_clone3), ctypes.byref(args), ctypes.c_long(88))
    if rc == 0:
        os._exit(0)
    r["clone3"] = "OK" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    return r
