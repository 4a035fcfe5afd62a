"""Writes to /tmp and reports what it saw: how much a write took before the kernel refused, what
/tmp holds, its size and filesystem type."""
import errno
import os

CHUNK = b"\x5a" * (1 << 20)


def _tmp_fs_type():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/tmp":
                return fields[fields.index("-") + 1]
    return None


def handler(event, context):
    out = {}
    if "write_mb" in event:
        written, err = 0, None
        try:
            with open("/tmp/" + event.get("name", "data"), "wb") as f:
                while written < event["write_mb"] << 20:
                    written += f.write(CHUNK)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            err = errno.errorcode.get(e.errno, str(e.errno))
        out.update(written_mb=written >> 20, error=err)
    st = os.statvfs("/tmp")
    out.update(files=sorted(os.listdir("/tmp")), size_mb=(st.f_blocks * st.f_frsize) >> 20,
               fs=_tmp_fs_type())
    return out
