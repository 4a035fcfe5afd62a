"""forklet's Python zygote: boots the interpreter once, then forks instances.

Started by forkletd as `/usr/bin/python3 -I -S -B forklet_zygote.py LIBFORKLET_ZYGOTE.so` with
the control socket at fd 3; that script only imports this module and runs main(). It imports only what an instance needs to run before saying hello,
so a cold start waits for little; the modules handlers commonly import are preloaded while the
zygote is idle. Everything an instance needs after its sandbox is up is imported before its
fork: the sandbox has no view of this file or of the library.
"""
import gc
import os
import sys
import time

_T0 = time.perf_counter()

# -I leaves the script's folder off sys.path; forklet_instance lives beside this file.
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _RUNNER_DIR)
import forklet_instance  # noqa: E402

sys.path.remove(_RUNNER_DIR)  # instances cannot see it anyway
# For instances that exec a fresh interpreter in their sandbox (to be checkpointed): the runners
# are at /var/runtime in every sandbox (the template root binds them read-only there).
_EXEC_RUNNER = ("import sys; sys.path.insert(0, '/var/runtime/python'); import forklet_instance; "
                "sys.path.pop(0); sys.exit(forklet_instance.serve())")

CONTROL_FD = 3

# Preloaded in idle time, one per slice, so a waiting fork request is never delayed long.
_LAZY_PRELOADS = [
    "json", "traceback", "base64", "datetime", "decimal", "uuid", "io", "collections", "typing",
    "logging", "urllib.parse", "hashlib", "math", "random", "copy", "dataclasses",
]


def _idle() -> int:
    try:
        if _LAZY_PRELOADS:
            forklet_instance._import_module(_LAZY_PRELOADS.pop(0))
            return 1
    except Exception:  # noqa: BLE001 - a missing optional module is not the zygote's failure
        return 1
    # Objects that exist now stay shared with every instance: keep the collector (and its
    # writes to every object header) off them, so forks copy fewer pages.
    gc.collect()
    gc.freeze()
    return 0


class _CtypesBinding:
    """libforklet_zygote.so through ctypes: when forklet_zygote_py.so is not installed."""

    def __init__(self, library):
        import ctypes  # ~2.5 ms of boot: only without the C binding

        self._ctypes = ctypes
        self._lib = ctypes.CDLL(library)
        self._lib.forklet_zygote_serve.argtypes = [ctypes.c_int, ctypes.c_uint32]
        self._lib.forklet_zygote_serve.restype = ctypes.c_int

    def set_idle_hook(self, hook):
        self._hook = self._ctypes.CFUNCTYPE(self._ctypes.c_int)(hook)  # kept alive with self
        self._lib.forklet_zygote_set_idle_hook(self._hook)

    def serve(self, fd, boot_us):
        return self._lib.forklet_zygote_serve(fd, boot_us)

    def child_execs(self):
        return bool(self._lib.forklet_zygote_child_execs())

    def after_fork_child(self):
        self._ctypes.pythonapi.PyOS_AfterFork_Child()


def _binding(library):
    """The C extension forklet_zygote_py.so beside libforklet_zygote.so, else ctypes."""
    path = os.path.join(os.path.dirname(library), "forklet_zygote_py.so")
    if os.path.exists(path):
        import _imp  # built in: no import machinery to load

        class _Spec:
            name = "forklet_zygote_py"
            origin = path

        return _imp.create_dynamic(_Spec())
    return _CtypesBinding(library)


def main() -> int:
    lib = _binding(sys.argv[1])
    lib.set_idle_hook(_idle)
    gc.freeze()
    boot_us = int((time.perf_counter() - _T0) * 1e6)
    # Returns only in a forked, sandboxed child (0), or when the daemon has gone (-1).
    if lib.serve(CONTROL_FD, boot_us) != 0:
        return 0
    if lib.child_execs():
        os.setsid()  # its own session: a checkpoint holds nothing of the daemon's
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", "-c", _EXEC_RUNNER])
    # Let Python reset its post-fork state (locks, thread state, at-fork hooks such as random's
    # reseed) as os.fork would have.
    t_child = time.perf_counter()
    lib.after_fork_child()
    return forklet_instance.serve(after_fork_us=int((time.perf_counter() - t_child) * 1e6))
