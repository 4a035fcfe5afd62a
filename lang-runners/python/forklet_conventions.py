"""How an instance calls its handler: the calling conventions a function picks with the variable
FORKLET_HANDLER_CONVENTION (the daemon has validated it and passes it in INIT as "convention").

  lambda     handler(event, context) -> JSON-serializable value (the default)
  openwhisk  main(params: dict) -> dict, with OpenWhisk's __OW_* variables in the environment
  stdin      main() reads the event's JSON from sys.stdin; what it writes to sys.stdout is the
             response body

Each convention gives a caller: call(payload: bytes, meta: dict) -> response body bytes, raising on
a function error. ConventionError carries an errorType of the runtime's own (a result of the
wrong kind, a non-zero exit); any other exception is the handler's.
"""
import io
import os
import sys
import time

import forklet_json  # json.loads/dumps without the json package's import cost


class ConventionError(Exception):
    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


class LambdaContext:
    """The context object of the AWS Lambda Python runtime."""

    def __init__(self, request_id: str, deadline_ms: int, init: dict):
        self.aws_request_id = request_id
        self.function_name = init["function"]
        self.function_version = init.get("version", "$LATEST")
        self.invoked_function_arn = init["arn"]
        self.memory_limit_in_mb = str(init["memory_mb"])
        self.log_group_name = init.get("log_group", "/aws/lambda/" + init["function"])
        self.log_stream_name = init.get("log_stream", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _lambda(handler, init: dict):
    def call(payload: bytes, meta: dict) -> bytes:
        context = LambdaContext(meta["request_id"], meta["deadline_ms"], init)
        if "arn" in meta:  # invoked through an alias
            context.invoked_function_arn = meta["arn"]
        event = forklet_json.loads(payload) if payload else {}
        return forklet_json.dumps(handler(event, context)).encode()
    return call


def _json_kind(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _openwhisk(handler, init: dict):
    environ = os.environ

    def call(payload: bytes, meta: dict) -> bytes:
        params = forklet_json.loads(payload) if payload else {}
        if not isinstance(params, dict):
            raise ConventionError("Runtime.InvalidEvent",
                                  "The action takes a dictionary of parameters (a JSON object); "
                                  f"the event is {_json_kind(params)}.")
        environ["__OW_ACTIVATION_ID"] = meta["request_id"]
        environ["__OW_DEADLINE"] = str(meta["deadline_ms"])
        result = handler(params)
        if not isinstance(result, dict):
            raise ConventionError("Runtime.InvalidResult",
                                  "The action did not return a dictionary (it returned "
                                  f"{type(result).__name__}).")
        return forklet_json.dumps(result).encode()
    return call


class _Capture(io.BytesIO):
    """The handler's stdout; stays readable when the handler closes sys.stdout."""

    def close(self) -> None:
        pass


def _stdin(handler, init: dict):
    def call(payload: bytes, meta: dict) -> bytes:
        out = _Capture()
        # Text streams like the interpreter's own (UTF-8, "\n"), with .buffer for raw bytes.
        stdin = io.TextIOWrapper(io.BytesIO(payload or b"{}"), encoding="utf-8",
                                 errors="surrogateescape", newline="\n")
        stdout = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", newline="\n",
                                  write_through=True)
        saved = sys.stdin, sys.stdout
        sys.stdin, sys.stdout = stdin, stdout
        try:
            result = handler()
        except SystemExit as e:
            if e.code is not None and e.code != 0:
                what = f"status {e.code}" if isinstance(e.code, int) else repr(e.code)
                raise ConventionError("Runtime.ExitError",
                                      f"main() exited with {what}").with_traceback(e.__traceback__)
            result = None
        finally:
            sys.stdin, sys.stdout = saved
            try:
                stdout.flush()
            except (ValueError, OSError):  # closed by the handler: what it wrote is in out
                pass
        body = out.getvalue()
        if not body and result is not None:
            body = forklet_json.dumps(result).encode()
        return body
    return call


_CALLERS = {"lambda": _lambda, "openwhisk": _openwhisk, "stdin": _stdin}


def known(convention: str) -> bool:
    return convention in _CALLERS


def environment(convention: str, init: dict) -> dict:
    """Variables a convention adds to the function's environment before its module loads."""
    if convention == "openwhisk":
        return {"__OW_NAMESPACE": "guest", "__OW_ACTION_NAME": "/guest/" + init["function"]}
    return {}


def caller(convention: str, handler, init: dict):
    return _CALLERS[convention](handler, init)
