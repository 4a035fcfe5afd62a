"""Tries to read what belongs to the host or to other functions: /etc/shadow, /root, the daemon's
state dir and another function's code (by their host paths), PID 1's environment, a secret
another instance keeps in its /tmp, and host paths (`host_markers`) in its /proc/self/mountinfo,
/proc/1/cmdline and /proc/cmdline. Reports every read that worked."""
import glob
import os


def _read(path, size=4096):
    try:
        if os.path.isdir(path):
            return ",".join(sorted(os.listdir(path)))
        with open(path, "rb") as f:
            return f.read(size).decode("latin-1")
    except OSError:
        return None


def handler(event, context):
    targets = ["/etc/shadow", "/etc/gshadow", "/root", "/root/.ssh", "/home", "/var/lib",
               "/proc/kcore", "/proc/keys", "/proc/sysrq-trigger", "/sys/kernel", "/boot",
               event["state_dir"], event["state_dir"] + "/functions",
               event["other_code_dir"], event["other_code_dir"] + "/app.py"]
    read = {p: v[:200] for p in targets if (v := _read(p))}
    # /proc/kcore and /proc/keys are masked with /dev/null: readable, and empty.
    read = {p: v for p, v in read.items() if v}
    environ = _read("/proc/1/environ") or ""
    found_secret = []
    for pattern in ("/tmp/*", "/dev/shm/*", "/proc/*/root/tmp/*", "/var/tmp/*"):
        for path in glob.glob(pattern):
            if event["secret"] in (_read(path) or ""):
                found_secret.append(path)
    # Host paths in what /proc tells about the instance itself: its mounts, its init's command
    # line (inherited from the zygote), the host's boot line.
    host_paths = {}
    for f in ("/proc/self/mountinfo", "/proc/1/cmdline", "/proc/self/cmdline", "/proc/cmdline"):
        text = (_read(f, 1 << 20) or "").replace("\0", " ")
        for line in text.splitlines():
            for marker in event.get("host_markers", []):
                if marker in line:
                    host_paths.setdefault(f, []).append(line[:300])
    mountinfo = {}
    for line in (_read("/proc/self/mountinfo", 1 << 20) or "").splitlines():
        fields = line.split(" ")
        dash = fields.index("-") if "-" in fields else -1
        if len(fields) > 4 and dash > 0:
            mountinfo[fields[4]] = {"root": fields[3], "fstype": fields[dash + 1]}
    return {
        "host_paths": host_paths,
        "mounts": {p: mountinfo.get(p) for p in ("/etc", "/var/runtime", "/var/task")},
        "proc_cmdline": _read("/proc/cmdline"),
        "proc1_cmdline": (_read("/proc/1/cmdline") or "").replace("\0", " ").strip(),
        "read": read,
        "proc1_is_self": os.readlink("/proc/1/exe") == os.readlink("/proc/self/exe") and os.getpid() == 1,
        "canary_in_proc1_environ": event["canary"] in environ,
        "canary_in_environ": any(event["canary"] in v for v in os.environ.values()),
        "found_secret": found_secret,
    }
