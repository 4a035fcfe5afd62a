"""Tries to change what it sees of the filesystem: mount a tmpfs, bind /proc, remount its
read-only root writable, unmount the masks over /proc, pivot_root, chroot, and the new mount API
(fsopen, open_tree, move_mount, mount_setattr). Reports the errno of each (OK means it worked)."""
import ctypes
import errno

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
MS_BIND, MS_REMOUNT, MS_REC = 4096, 32, 16384
MNT_DETACH = 2
AT_FDCWD = -100


def _call(fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    return "OK" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def _sys(nr, *args):
    return _call(libc.syscall, ctypes.c_long(nr),
                 *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])


def handler(event, context):
    return {
        "mount_tmpfs": _call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
        "bind_proc": _call(libc.mount, b"/proc", b"/tmp", None, MS_BIND | MS_REC, None),
        "remount_root_rw": _call(libc.mount, None, b"/", None, MS_REMOUNT, None),
        "umount_kcore_mask": _call(libc.umount2, b"/proc/kcore", MNT_DETACH),
        "umount_proc": _call(libc.umount2, b"/proc", MNT_DETACH),
        "pivot_root": _sys(155, b"/tmp", b"/tmp"),
        "chroot": _call(libc.chroot, b"/tmp"),
        "fsopen": _sys(430, b"tmpfs", 0),
        "open_tree": _sys(428, AT_FDCWD, b"/", 1),  # OPEN_TREE_CLONE
        "move_mount": _sys(429, AT_FDCWD, b"/tmp", AT_FDCWD, b"/var", 0),
        "mount_setattr": _sys(442, AT_FDCWD, b"/", 0, None, 0),
    }
