"""Tries to reach hardware and kernel memory through device nodes: opens the host's usual ones
by path, and creates its own with mknod (in /tmp, which is its to write). Reports what opened or
was created."""
import errno
import os
import stat

PATHS = ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/nvme0n1",
         "/dev/loop0", "/dev/loop-control", "/dev/fuse", "/dev/net/tun", "/dev/kvm", "/dev/dri/card0",
         "/dev/input/event0", "/dev/mapper/control", "/dev/cpu/0/msr", "/sys/kernel/debug",
         "/sys/firmware", "/proc/kcore"]
NODES = {"mem": (1, 1), "kmsg": (1, 11), "vda": (254, 0), "sda": (8, 0), "tty": (5, 0)}


def handler(event, context):
    r = {"dev": sorted(os.listdir("/dev")), "opened": [], "mknod": {}}
    for p in PATHS:
        try:
            fd = os.open(p, os.O_RDONLY)
            if os.read(fd, 16):  # /proc/kcore is masked by /dev/null: opens, reads nothing
                r["opened"].append(p)
            os.close(fd)
        except OSError:
            pass
    for name, (major, minor) in NODES.items():
        kind = stat.S_IFBLK if name in ("vda", "sda") else stat.S_IFCHR
        try:
            os.mknod(f"/tmp/{name}", kind | 0o666, os.makedev(major, minor))
            r["mknod"][name] = "OK"
            try:  # created: /tmp is nodev, so it must still not open as a device
                os.close(os.open(f"/tmp/{name}", os.O_RDONLY))
                r["mknod"][name] = "OPENED"
            except OSError:
                pass
        except OSError as e:
            r["mknod"][name] = errno.errorcode.get(e.errno, str(e.errno))
    return r
