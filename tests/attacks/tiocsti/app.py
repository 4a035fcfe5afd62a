"""Tries to push keystrokes into a terminal (ioctl TIOCSTI, and TIOCLINUX), also with the upper
half of the request set (the CVE-2019-10063 filter bypass), and to open a terminal at all.
Reports the errno of each: EPERM is the filter; ENOTTY would mean the request got through."""
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
TIOCSTI, TIOCLINUX, TIOCGWINSZ = 0x5412, 0x541C, 0x5413


def _ioctl(fd, request):
    ch = ctypes.c_char(b"x")
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(16), ctypes.c_long(fd), ctypes.c_ulong(request), ctypes.byref(ch))
    return "OK" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def handler(event, context):
    r = {}
    for fd in (0, 1, 2):
        r[f"tiocsti_fd{fd}"] = _ioctl(fd, TIOCSTI)
        r[f"tiocsti_high_bits_fd{fd}"] = _ioctl(fd, TIOCSTI | (1 << 32))
        r[f"tioclinux_fd{fd}"] = _ioctl(fd, TIOCLINUX)
    r["other_ioctl_passes"] = _ioctl(0, TIOCGWINSZ)  # not filtered: ENOTTY from /dev/null
    for tty in ("/dev/tty", "/dev/console", "/dev/tty0", "/dev/ptmx", "/dev/pts/0"):
        try:
            os.close(os.open(tty, os.O_RDWR | os.O_NOCTTY))
            r[tty] = "OK"
        except OSError as e:
            r[tty] = errno.errorcode.get(e.errno, str(e.errno))
    return r
