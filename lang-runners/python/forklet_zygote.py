"""forklet's Python zygote: boots the interpreter once, preloads modules, then forks instances.

Started by forkletd as `/usr/bin/python3 -I -S forklet_zygote.py LIBFORKLET_ZYGOTE.so` with the
control socket at fd 3. Everything an instance needs after its sandbox is up is imported here,
before the first fork: the sandbox has no view of this file or of the library.
"""
import ctypes
import sys
import time

_T0 = time.perf_counter()

# Preloaded for every instance (the Lambda Python runtime's usual imports).
import base64  # noqa: E402,F401
import datetime  # noqa: E402,F401
import decimal  # noqa: E402,F401
import importlib  # noqa: E402
import io  # noqa: E402,F401
import json  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402,F401

# -I leaves the script's folder off sys.path; forklet_instance lives beside this file.
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _RUNNER_DIR)
import forklet_instance  # noqa: E402

sys.path.remove(_RUNNER_DIR)  # instances cannot see it anyway

CONTROL_FD = 3


def main() -> int:
    lib = ctypes.CDLL(sys.argv[1])
    lib.forklet_zygote_serve.argtypes = [ctypes.c_int, ctypes.c_uint32]
    lib.forklet_zygote_serve.restype = ctypes.c_int
    boot_us = int((time.perf_counter() - _T0) * 1e6)
    # Returns only in a forked, sandboxed child (0), or when the daemon has gone (-1).
    if lib.forklet_zygote_serve(CONTROL_FD, boot_us) != 0:
        return 0
    # Let Python reset its post-fork state (locks, thread state, at-fork hooks such as random's
    # reseed) as os.fork would have.
    ctypes.pythonapi.PyOS_AfterFork_Child()
    return forklet_instance.serve()


if __name__ == "__main__":
    sys.exit(main())
