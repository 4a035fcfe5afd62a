"""Tries to slip past the syscall filter by another ABI: a 32-bit `int 0x80` system call and an
x32 one (syscall numbers with bit 30 set), each from a child process. The filter's answer to a
foreign ABI is to kill the process; reports how each child ended."""
import ctypes
import mmap
import os
import signal

# getpid through int 0x80 (32-bit number 20), then ret; x32 getpid (39 | 0x40000000) by syscall.
INT80_GETPID = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])
X32_GETPID = bytes([0xB8, 39, 0, 0, 0x40, 0x0F, 0x05, 0xC3])


def _run_in_child(code):
    pid = os.fork()
    if pid == 0:
        mem = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        mem.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        rc = ctypes.CFUNCTYPE(ctypes.c_long)(addr)()
        os._exit(0 if rc > 0 else 3)  # 0: the call worked; 3: it failed with an error
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return {0: "OK", 3: "ERROR"}.get(os.WEXITSTATUS(status), str(os.WEXITSTATUS(status)))


def handler(event, context):
    return {"int80": _run_in_child(INT80_GETPID), "x32": _run_in_child(X32_GETPID)}
