"""Fills the kernel's tables that are not files or processes, and keeps what it got while its
instance idles: `unix` fills Unix socket pairs in `procs` processes until refused; `sysv` fills
System V message queues; `inotify` takes inotify instances and watches; `locks` takes file locks.
Reports how much it got and the errno that stopped it, so the host can compare with what the
instance's memory cgroup was charged."""
import ctypes
import errno
import fcntl
import os
import socket
import time

libc = ctypes.CDLL(None, use_errno=True)
_held = []


def _name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def _fill_unix(max_fds):
    """In this process: socket pairs whose one end is written to until it blocks. Returns bytes."""
    queued, stopped = 0, None
    chunk = b"u" * 65536
    while len(_held) < max_fds:
        try:
            a, b = socket.socketpair()
        except OSError as e:
            stopped = _name(e)
            break
        _held.extend([a, b])
        a.setblocking(False)
        while True:
            try:
                queued += a.send(chunk)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    stopped = _name(e)
                break
        if stopped:
            break
    return queued, stopped


def unix(event):
    r, w = os.pipe()
    children = []
    for _ in range(int(event.get("procs", 4))):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            queued, stopped = _fill_unix(int(event.get("fds", 900)))
            os.write(w, ("%d %s\n" % (queued, stopped)).encode())
            while True:
                time.sleep(3600)  # holds its buffers
        children.append(pid)
    os.close(w)
    total, stops = 0, {}
    with os.fdopen(r) as f:
        for line in f:
            q, s = line.split()
            total += int(q)
            stops[s] = stops.get(s, 0) + 1
    return {"queued_mb": total / (1 << 20), "stopped_by": stops}


def sysv(event):
    class Msg(ctypes.Structure):
        _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 8192)]
    msg = Msg(1, b"m" * 8192)
    queued, queues, stopped = 0, 0, None
    while stopped is None and queues < int(event.get("queues", 32000)):
        qid = libc.msgget(0, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
        if qid < 0:
            stopped = "msgget " + errno.errorcode.get(ctypes.get_errno(), "?")
            break
        queues += 1
        while libc.msgsnd(qid, ctypes.byref(msg), 8192, 0o4000) == 0:  # IPC_NOWAIT
            queued += 8192
        e = ctypes.get_errno()
        if e != errno.EAGAIN:
            stopped = "msgsnd " + errno.errorcode.get(e, "?")
    return {"queued_mb": queued / (1 << 20), "queues": queues, "stopped_by": stopped}


def inotify(event):
    instances, watches, stopped = 0, 0, {}
    while True:
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            stopped["inotify_init"] = errno.errorcode.get(ctypes.get_errno(), "?")
            break
        _held.append(fd)
        instances += 1
    if _held:
        for i in range(int(event.get("watches", 300000))):
            path = "/tmp/w%d" % (i % 2000)
            if i < 2000:
                open(path, "w").close()
            fd = _held[(i // 2000) % len(_held)]  # each instance watches each file once
            if libc.inotify_add_watch(fd, path.encode(), 0x2) < 0:
                stopped["inotify_add_watch"] = errno.errorcode.get(ctypes.get_errno(), "?")
                break
            watches += 1
    return {"instances": instances, "watches": watches, "stopped_by": stopped}


def locks(event):
    got, stopped = 0, None
    f = open("/tmp/locks", "wb+")
    _held.append(f)
    for i in range(int(event.get("locks", 3000))):
        try:  # every other byte: ranges that cannot merge
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * i)
            got += 1
        except OSError as e:
            stopped = _name(e)
            break
    return {"locks": got, "stopped_by": stopped}


def handler(event, context):
    r = {"unix": unix, "sysv": sysv, "inotify": inotify, "locks": locks}[event["mode"]](event)
    r["uid"] = os.getuid()
    return r
