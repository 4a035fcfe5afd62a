"""An instance's life inside its sandbox: init the function, then serve invocations one by one.
How the handler is called (Lambda's way or another) is forklet_conventions' business.

Speaks the channel protocol of zygote/channel.h on fd 3: frames of a 12-byte header
(type, meta_len, payload_len; little-endian u32), JSON metadata, raw payload.
"""
import os
import struct
import sys
import time
# importlib.import_module without the importlib package (it imports warnings: ~0.4 ms of a cold
# boot): for an absolute name import_module is exactly this call.
from _frozen_importlib import _gcd_import as _import_module
from _frozen_importlib import _load as _load_spec
from _frozen_importlib_external import PathFinder as _PathFinder

import forklet_conventions
import forklet_json  # json.loads/dumps without the json package's import cost

CHANNEL_FD = 3
_HEADER = struct.Struct("<III")
SETUP, INIT, READY, INIT_ERROR, INVOKE, RESULT, RESTORED, BOOTED, PREPARE, PREPARED = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
SDK_DIR = "/var/runtime/python-sdk"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # Lambda's limit: 6,291,556 bytes
# Frames of the runner's own files are left out of a function's stack trace.
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _read_exact(n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(CHANNEL_FD, n)
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _read_frame():
    ftype, meta_len, payload_len = _HEADER.unpack(_read_exact(_HEADER.size))
    meta = forklet_json.loads(_read_exact(meta_len)) if meta_len else {}
    payload = _read_exact(payload_len) if payload_len else b""
    return ftype, meta, payload


def _write_frame(ftype: int, meta: dict, payload: bytes = b"") -> None:
    m = forklet_json.dumps(meta).encode()
    data = memoryview(_HEADER.pack(ftype, len(m), len(payload)) + m + payload)
    while data:
        n = os.write(CHANNEL_FD, data)
        data = data[n:]


def _error(exc: BaseException, error_type: str = "") -> dict:
    import traceback  # preloaded by the zygote when idle; errors are not the fast path
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(
            [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_RUNNER_DIR)]),
    }


# An instance forked ahead of demand finds and compiles its handler's module while it waits
# (_precompile): (module name, its spec whose loader hands back the compiled code), or None.
_precompiled = None


def _module_name(handler: str) -> str:
    return handler.rpartition(".")[0].replace("/", ".")


def _precompile(handler: str) -> None:
    """Locate the handler's module on the function's path and compile it, without running any of
    it: what an import does before it executes the module (~0.4 ms here, most of a small
    function's init). Only a top-level module not already imported (a dotted name would run its
    package's code to be found; an imported one is what an import would return). Any failure is
    left to the real import at INIT, which reports it as the function's init error."""
    global _precompiled
    name = _module_name(handler)
    if not name or "." in name or name in sys.modules:
        return
    try:
        spec = _PathFinder.find_spec(name, sys.path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "get_code"):
            return
        code = spec.loader.get_code(name)
    except Exception:  # noqa: BLE001 - the import at INIT meets the same error and reports it
        return
    if code is None:
        return
    spec.loader.get_code = lambda _name, _code=code: _code  # this instance's loader only
    _precompiled = (name, spec)


def _import_handler_module(module_name: str):
    if _precompiled is not None and _precompiled[0] == module_name and module_name not in sys.modules:
        return _load_spec(_precompiled[1])  # executes the module, as the import would
    return _import_module(module_name)


def _load_handler(handler: str):
    func_name = handler.rpartition(".")[2]
    module_name = _module_name(handler)
    try:
        module = _import_handler_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the function's init error
        err = _error(e, "Runtime.ImportModuleError")
        err["errorMessage"] = f"Unable to import module '{module_name}': {e}"
        raise InitError(err) from e
    func = getattr(module, func_name, None)
    if not callable(func):
        raise InitError({"errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
                         "errorType": "Runtime.HandlerNotFound", "stackTrace": []})
    return func


class InitError(Exception):
    def __init__(self, body: dict):
        super().__init__(body["errorMessage"])
        self.body = body


def _flush_logs() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a handler may have replaced or closed them
            pass


def _after_restore() -> None:
    """This process was restored from a snapshot taken after init: every restore starts with the
    same memory, so what must differ between instances is made anew here."""
    t0 = time.perf_counter()
    rnd = sys.modules.get("random")
    if rnd is not None:
        rnd.seed()  # the snapshot's generator state is shared by every restore of it
    _write_frame(READY, {"init_us": 0, "restore_us": int((time.perf_counter() - t0) * 1e6)})


def _prepare(init: dict) -> None:
    """The function's environment, time zone and import path: no function code runs here."""
    os.environ.clear()
    os.environ.update(init.get("env", {}))
    os.environ.update(forklet_conventions.environment(init.get("convention", "lambda"), init))
    time.tzset()  # the function's TZ (":UTC" unless it set its own), not the zygote's
    sys.path.insert(0, "/var/task")
    # Layers (/opt) after the function's own code, before the runtime's modules, as on Lambda.
    for i, layer_dir in enumerate((f"/opt/python/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages",
                                   "/opt/python"), start=1):
        if layer_dir not in sys.path:
            sys.path.insert(i, layer_dir)
    # The AWS SDK (boto3, botocore), after the function's own packages as on Lambda.
    if SDK_DIR not in sys.path:
        sys.path.append(SDK_DIR)


def _read_init():
    """INIT, or PREPARE then INIT: an instance forked ahead of demand gets its function's init
    message early and sets up its environment while it waits (its copy-on-write faults too, ~100
    at ~10 us each here); the INIT that starts it then only says so. Returns the init message and
    the microseconds spent on the environment after INIT came, or None on a protocol error."""
    ftype, init, _ = _read_frame()
    if ftype == PREPARE:
        _prepare(init)
        # The import system's caches for /var/task and /opt (directory listings, no function
        # code): a name that cannot exist is looked up on the whole path once.
        _PathFinder.find_spec("forklet-prepare", sys.path)
        _precompile(init.get("handler", ""))
        _write_frame(PREPARED, {})  # ready to be taken only now
        ftype, meta, _ = _read_frame()
        return (init, 0) if ftype == INIT and meta.get("prepared") is True else (None, 0)
    if ftype != INIT:
        return None, 0
    t_env = time.perf_counter()
    _prepare(init)
    return init, int((time.perf_counter() - t_env) * 1e6)


def serve(after_fork_us: int = 0, exec_us: int = 0) -> int:
    # The runner's own start-up costs come back in READY, so the daemon can show where a start's
    # time goes (after_fork: Python's post-fork reset; env: setting up init's environment).
    # exec_us: this interpreter was exec'd for a cold start at that CLOCK_MONOTONIC time
    # (lang-runners/python/python_mode.cc): its boot is reported first, as Node's runner does.
    if exec_us:
        _write_frame(BOOTED, {"boot_us": max(0, time.monotonic_ns() // 1000 - exec_us)})
    try:
        init, env_us = _read_init()
    except EOFError:
        return 0
    if init is None:
        return 2
    convention = init.get("convention", "lambda")
    t0 = time.perf_counter()
    try:
        if not forklet_conventions.known(convention):  # the daemon validated it; a mismatch
            raise InitError({"errorMessage": f"Unknown handler convention '{convention}'",
                             "errorType": "Runtime.InvalidConvention", "stackTrace": []})
        handler = _load_handler(init["handler"])
        call = forklet_conventions.caller(convention, handler, init)
    except InitError as e:
        print(f"[ERROR] {e.body['errorType']}: {e.body['errorMessage']}", file=sys.stderr)
        _flush_logs()
        e.body["init_us"] = int((time.perf_counter() - t0) * 1e6)
        _write_frame(INIT_ERROR, e.body)
        return 1
    _flush_logs()
    _write_frame(READY, {"init_us": int((time.perf_counter() - t0) * 1e6),
                         "after_fork_us": after_fork_us, "env_us": env_us})

    while True:
        try:
            ftype, meta, payload = _read_frame()
        except EOFError:
            return 0
        if ftype == RESTORED:
            _after_restore()
            continue
        if ftype != INVOKE:
            return 2
        t0 = time.perf_counter()
        ok = True
        try:
            body = call(payload, meta)
        except Exception as e:  # noqa: BLE001 - the handler's exception is the invocation's error
            ok = False
            if isinstance(e, forklet_conventions.ConventionError):
                err = _error(e, e.error_type)
            elif isinstance(e, (TypeError, ValueError)) and "not JSON serializable" in str(e):
                err = _error(e, "Runtime.MarshalError")
                err["errorMessage"] = f"Unable to marshal response: {e}"
            else:
                err = _error(e)
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr)
            sys.stderr.write("".join(err["stackTrace"]))
            body = forklet_json.dumps(err).encode()
        handler_us = int((time.perf_counter() - t0) * 1e6)
        if len(body) > MAX_RESPONSE_BYTES:
            ok = False
            err = {"errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum "
                                   f"allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                   "errorType": "Function.ResponseSizeTooLarge"}
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr)
            body = forklet_json.dumps(err).encode()
        _flush_logs()
        _write_frame(RESULT, {"ok": ok, "handler_us": handler_us}, body)
