"""Tries to write anywhere but its own /tmp: the root, /etc, /usr, its own code, /proc/sys (the
core_pattern escape), /dev, the host's state dir; and to lower its own OOM score. Reports every
write that worked."""
import os


def _try(path, mode="a"):
    try:
        with open(path, mode) as f:
            f.write("x")
        return True
    except OSError:
        return False


def handler(event, context):
    targets = ["/owned", "/etc/owned", "/etc/passwd", "/usr/owned", "/usr/bin/python3",
               "/lib/owned", "/bin/owned", "/var/owned", "/var/task/owned", "/var/task/app.py",
               "/dev/owned", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname",
               "/proc/sys/vm/drop_caches", "/proc/self/setgroups", "/proc/self/uid_map",
               event["state_dir"] + "/owned"]
    wrote = [p for p in targets if _try(p)]
    for d in ("/owned-dir", "/var/task/owned-dir", "/etc/owned-dir"):
        try:
            os.mkdir(d)
            wrote.append(d)
        except OSError:
            pass
    try:
        os.chmod("/var/task/app.py", 0o777)
        wrote.append("chmod /var/task/app.py")
    except OSError:
        pass
    try:  # a hard link into /tmp would let it keep (and write) a host file
        os.link("/usr/bin/python3", "/tmp/python3-link")
        wrote.append("link /usr/bin/python3")
    except OSError:
        pass
    oom_lowered = False
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000")
        oom_lowered = True
    except OSError:
        pass
    return {"wrote": wrote, "oom_score_adj_lowered": oom_lowered, "tmp_writable": _try("/tmp/ok")}
