"""Takes Linux AIO contexts until refused: io_setup(16384) four times would use all 65,536 events
of the host-wide fs.aio-max-nr, and every other process's io_setup then fails with EAGAIN. The
contexts it gets are kept after the response (the warm instance holds them). Reports each errno."""
import ctypes
import errno

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_io_setup = 206
_contexts = []


def handler(event, context):
    results = []
    for _ in range(int(event.get("calls", 4))):
        ctx = ctypes.c_ulong(0)
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(SYS_io_setup), ctypes.c_long(16384), ctypes.byref(ctx))
        if rc == 0:
            _contexts.append(ctx)
            results.append("OK")
        else:
            results.append(errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())))
    return {"io_setup": results}
