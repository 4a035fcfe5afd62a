# A hostile function's look at what protects its memory and its dicts: the 16 AT_RANDOM bytes
# (the stack canary and pointer guard come from them), where libc is mapped, Python's hash
# secret (through hash("abc")) and its `random` state. Two functions must differ in all of them.
import ctypes
import random

AT_RANDOM = 25


LIBC = ctypes.CDLL(None)
LIBC.getauxval.restype = ctypes.c_ulong
LIBC.getauxval.argtypes = [ctypes.c_ulong]


def at_random():
    # getauxval reads the auxiliary vector (/proc/self/auxv is not readable for the runner).
    return ctypes.string_at(LIBC.getauxval(AT_RANDOM), 16).hex()


def libc_base():
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libc.so" in line or "libc-" in line:
                    return line.split("-", 1)[0]
    except OSError:
        pass
    # Where libc's printf is: libc's base plus a constant.
    return hex(ctypes.cast(LIBC.printf, ctypes.c_void_p).value)


def handler(event, context):
    return {"at_random": at_random(), "libc_base": libc_base(), "hash": hash("abc"),
            "random": random.random()}
