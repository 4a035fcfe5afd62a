"""Tries the kernel's riskiest interfaces, each called so that it would work (or do nothing) for
an unconfined process of its uid: bpf, keyctl/add_key, perf_event_open, userfaultfd, io_uring,
module loading, kexec, open_by_handle_at, kcmp, pidfd_getfd, process_madvise, modify_ldt, iopl,
syslog, personality flags, NUMA policy, socket families outside UNIX/INET/INET6/NETLINK, and
socketpair of any family but UNIX.
Reports the errno of each (OK means it worked)."""
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def _sys(nr, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a
                                          for a in args])
    if rc >= 0 and nr in (41, 298, 323, 425, 434, 438):  # it handed out a descriptor: give it back
        os.close(rc)
    return "OK" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def handler(event, context):
    bpf_attr = (ctypes.c_uint32 * 32)(1, 4, 4, 1)  # BPF_MAP_TYPE_HASH, key 4, value 4, 1 entry
    perf_attr = (ctypes.c_uint32 * 32)(1, 128, 0, 0)  # PERF_TYPE_SOFTWARE, size, CPU_CLOCK
    uring = (ctypes.c_uint32 * 30)()
    handle = (ctypes.c_uint32 * 4)(8, 1, 0, 0)
    buf = ctypes.create_string_buffer(256)
    self_fd = os.open("/proc/self/exe", os.O_RDONLY)
    r = {
        "bpf": _sys(321, 0, ctypes.byref(bpf_attr), 128),  # BPF_MAP_CREATE
        "keyctl": _sys(250, 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
        "add_key": _sys(248, b"user", b"forklet-attack", b"x", 1, -2),
        "request_key": _sys(249, b"user", b"forklet-attack", None, -2),
        "perf_event_open": _sys(298, ctypes.byref(perf_attr), 0, -1, -1, 0),
        "userfaultfd": _sys(323, 0),
        "io_uring_setup": _sys(425, 1, ctypes.byref(uring)),
        "init_module": _sys(175, None, 0, b""),
        "finit_module": _sys(313, self_fd, b"", 0),
        "delete_module": _sys(176, b"forklet_nonexistent", os.O_NONBLOCK),
        "kexec_load": _sys(246, 0, 0, None, 0xdead0000),  # invalid flags: a no-op even if allowed
        "kexec_file_load": _sys(320, -1, -1, 0, b"", 0xdead0000),
        "open_by_handle_at": _sys(304, self_fd, ctypes.byref(handle), os.O_RDONLY),
        "name_to_handle_at": _sys(303, -100, b"/", ctypes.byref(handle), ctypes.byref(buf), 0),
        "kcmp": _sys(312, os.getpid(), os.getpid(), 0, self_fd, self_fd),  # KCMP_FILE
        "pidfd_getfd": _sys(438, _sys_fd(434, os.getpid()), self_fd, 0),
        "process_madvise": _sys(440, -1, None, 0, 0, 0),
        "modify_ldt": _sys(154, 0, ctypes.byref(buf), 16),
        "iopl": _sys(172, 3),
        "ioperm": _sys(173, 0x80, 1, 1),
        "syslog": _sys(103, 10, None, 0),  # SYSLOG_ACTION_SIZE_BUFFER: a read
        "personality_read_implies_exec": _sys(135, 0x0400000),
        "set_mempolicy": _sys(238, 0, None, 0),  # MPOL_DEFAULT: a no-op
        "swapon": _sys(167, b"/nonexistent", 0),
        "lookup_dcookie": _sys(212, 0, ctypes.byref(buf), 256),
        "socket_families": {},
    }
    os.close(self_fd)
    for name, family in (("packet", 17), ("key", 15), ("bluetooth", 31), ("alg", 38),
                         ("vsock", 40), ("xdp", 44), ("can", 29), ("tipc", 30), ("rds", 21)):
        r["socket_families"][name] = _sys(41, family, 2, 0)  # SOCK_DGRAM
    # socketpair reaches a family's code as socket does; only AF_UNIX pairs are allowed.
    pair = (ctypes.c_int * 2)()
    r["socketpair_families"] = {}
    for name, family in (("vsock", 40), ("inet", 2), ("tipc", 30), ("bluetooth", 31), ("packet", 17)):
        r["socketpair_families"][name] = _sys(53, family, 1, 0, ctypes.byref(pair))  # SOCK_STREAM
    unix = _sys(53, 1, 1, 0, ctypes.byref(pair))
    if unix == "OK":
        os.close(pair[0])
        os.close(pair[1])
    r["socketpair_unix"] = unix
    return r


def _sys_fd(nr, *args):
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return int(rc)
