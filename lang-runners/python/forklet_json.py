"""JSON for the runner without the cost of importing the json package on a cold start.

`import json` pulls in re, enum, functools and collections: about 6 ms of a Python zygote's boot,
more than a third of what the interpreter itself costs to start. Its fast path is the C
accelerator _json anyway (an extension module of the interpreter): this module calls it directly
with exactly json.loads' and json.dumps' defaults, so a result is the one json would give.
Anything off that path (bytes in another encoding or with a BOM, invalid input, a value json
cannot encode, any exception) is handed to the json package itself, so errors, their types and
their messages are json's own. The zygote imports json in idle time, so instances forked later
(and handlers that import it) find it loaded.
"""
import _json

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What _json.make_scanner reads from a json.JSONDecoder() with no arguments."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Context())


def _json_loads(s):
    import json  # noqa: PLC0415 - off the fast path only
    return json.loads(s)


def _json_dumps(obj):
    import json  # noqa: PLC0415
    return json.dumps(obj)


def loads(s):
    """json.loads(s) for a str, bytes or bytearray."""
    text = s
    if isinstance(s, (bytes, bytearray)):
        # json.detect_encoding: a BOM, or a zero byte among the first two, is not plain UTF-8.
        if len(s) >= 2 and (not s[0] or not s[1]) or s[:3] == b"\xef\xbb\xbf" or \
                s[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return _json_loads(s)
        try:
            text = s.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _json_loads(s)
    elif not isinstance(s, str) or s.startswith("\ufeff"):
        return _json_loads(s)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
    except Exception:  # noqa: BLE001 - json raises the same, with its own message
        return _json_loads(s)
    if end != len(text) and len(text.rstrip(_WHITESPACE)) != end:
        return _json_loads(s)  # "Extra data"
    return obj


def _default(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj):
    """json.dumps(obj) with its defaults (ensure_ascii, allow_nan, circular check, ", " ": ")."""
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    # A new encoder per call: its circular-reference markers must start empty, as json's do.
    encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None, ": ", ", ",
                                False, False, True)
    try:
        return "".join(encode(obj, 0))
    except Exception:  # noqa: BLE001
        return _json_dumps(obj)
