"""Tries to regain privilege through the host's setuid/setgid and file-capability binaries: runs
each one found and reads the credentials it runs with from /proc.
Reports every binary that ran with more than the instance's own uid, gid or capabilities."""
import os
import signal
import stat
import time

DIRS = ["/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/lib/openssh", "/usr/lib/dbus-1.0",
        "/usr/lib/polkit-1", "/usr/lib/x86_64-linux-gnu/utempter"]


def _privileged_binaries():
    found = []
    for d in DIRS:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            try:
                caps = os.getxattr(p, "security.capability")
            except OSError:
                caps = b""
            if stat.S_ISREG(st.st_mode) and (st.st_mode & (stat.S_ISUID | stat.S_ISGID) or caps):
                found.append(p)
    return found


def _status(pid):
    creds = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Name", "State", "Uid", "Gid", "CapEff", "CapPrm"):
                creds[key] = value.split()
    return creds


def _run_and_read_creds(path):
    pid = os.fork()
    if pid == 0:
        fd = os.open("/dev/null", os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        try:
            os.execv(path, [path, "--version"])
        finally:
            os._exit(127)
    # The new name is set after the new credentials are committed: once it shows, the creds are
    # the ones the binary runs with. A zombie keeps them too (some binaries exit at once).
    comm = os.path.basename(path)[:15]
    deadline = time.monotonic() + 5
    while True:
        creds = _status(pid)
        if creds["Name"] == [comm] or creds["State"][0] == "Z" or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)
    return creds


def handler(event, context):
    me = {"uid": str(os.getuid()), "gid": str(os.getgid())}
    ran, elevated = [], []
    for path in _privileged_binaries():
        c = _run_and_read_creds(path)
        ran.append(path)
        if (any(u != me["uid"] for u in c.get("Uid", [])) or
                any(g != me["gid"] for g in c.get("Gid", [])) or
                c.get("CapEff", ["0"])[0].strip("0") or c.get("CapPrm", ["0"])[0].strip("0")):
            elevated.append({path: c})
    usr = os.statvfs("/usr")
    return {"ran": ran, "elevated": elevated, "usr_nosuid": bool(usr.f_flag & os.ST_NOSUID)}
