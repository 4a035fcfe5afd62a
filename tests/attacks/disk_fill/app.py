"""Fills its /tmp until the kernel refuses, then tries the places that are not its to fill (the
root, its code, /dev). Reports how much /tmp took, the errno that stopped it, and any other place
that took bytes."""
import errno
import os

CHUNK = b"\xaa" * (1 << 20)


def _fill(path, limit):
    written = 0
    try:
        with open(path, "wb") as f:
            while written < limit:
                written += f.write(CHUNK)
                f.flush()
        return written, None
    except OSError as e:
        return written, errno.errorcode.get(e.errno, str(e.errno))


def handler(event, context):
    tmp_bytes, tmp_err = _fill("/tmp/fill", 64 << 30)
    others = {}
    for path in ("/fill", "/var/task/fill", "/dev/fill", "/dev/shm/fill2"):
        n, err = _fill(path, 4 << 20)
        others[path] = {"bytes": n, "error": err}
    st = os.statvfs("/tmp")
    os.unlink("/tmp/fill")
    return {"tmp_bytes": tmp_bytes, "tmp_error": tmp_err, "tmp_size": st.f_blocks * st.f_frsize,
            "others": others}
