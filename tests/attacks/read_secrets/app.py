"""Tries to read what belongs to the host or to other functions: /etc/shadow, /root, the daemon's
state dir and another function's code (by their host paths), PID 1's environment, and a secret
another instance keeps in its /tmp. Reports every read that worked."""
import glob
import os


def _read(path):
    try:
        if os.path.isdir(path):
            return ",".join(sorted(os.listdir(path)))
        with open(path, "rb") as f:
            return f.read(4096).decode("latin-1")
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
    return {
        "read": read,
        "proc1_is_self": os.readlink("/proc/1/exe") == os.readlink("/proc/self/exe") and os.getpid() == 1,
        "canary_in_proc1_environ": event["canary"] in environ,
        "canary_in_environ": any(event["canary"] in v for v in os.environ.values()),
        "found_secret": found_secret,
    }
