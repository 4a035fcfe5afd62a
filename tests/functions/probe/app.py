"""Probes the sandbox from inside and reports what it could do. Every key is a property a
tenant must not have (or must have) under forklet's isolation."""
import ctypes
import errno
import os
import socket

libc = ctypes.CDLL(None, use_errno=True)


def _status_field(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None


def _can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False


def _syscall_errno(fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    return 0 if rc == 0 else ctypes.get_errno()


def handler(event, context):
    r = {}
    r["uid"] = os.getuid()
    r["gid"] = os.getgid()
    r["groups"] = os.getgroups()
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        r[cap] = _status_field(cap)
    r["NoNewPrivs"] = _status_field("NoNewPrivs")
    r["Seccomp"] = _status_field("Seccomp")
    r["pids_visible"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    r["hostname"] = socket.gethostname()
    r["write_var_task"] = _can_write("/var/task/owned")
    r["write_etc"] = _can_write("/etc/owned")
    r["write_usr"] = _can_write("/usr/owned")
    r["write_root"] = _can_write("/owned")
    r["write_tmp"] = _can_write("/tmp/owned")
    r["etc_shadow_exists"] = os.path.exists("/etc/shadow")
    r["root_home_exists"] = os.path.exists("/root")
    r["state_dir_visible"] = os.path.exists(event.get("state_dir", "/nonexistent"))
    r["var_task"] = sorted(os.listdir("/var/task"))
    r["interfaces"] = [name for _, name in socket.if_nameindex()]
    with open("/proc/net/route") as f:
        r["routes"] = len(f.readlines()) - 1
    # The daemon listens on the host's loopback: an instance has its own loopback.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", int(event.get("daemon_port", 9000))))
        r["host_loopback_reachable"] = True
    except OSError as e:
        r["host_loopback_reachable"] = False
        r["host_loopback_errno"] = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    # Blocked system calls: EPERM from seccomp (or from missing capabilities).
    r["unshare_errno"] = errno.errorcode.get(_syscall_errno(libc.unshare, 0x00020000), "0")
    r["mount_errno"] = errno.errorcode.get(
        _syscall_errno(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None), "0")
    r["setuid0_errno"] = errno.errorcode.get(_syscall_errno(libc.setuid, 0), "0")
    r["ptrace_errno"] = errno.errorcode.get(_syscall_errno(libc.ptrace, 0, 0, 0, 0), "0")  # TRACEME
    # A file written in /tmp by this instance stays its own.
    with open("/tmp/marker-" + context.aws_request_id, "w") as f:
        f.write("mine")
    r["tmp_files"] = sorted(os.listdir("/tmp"))
    return r
