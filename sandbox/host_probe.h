// What the host's kernel offers that the sandbox's guarantees depend on: probed, never assumed.
#pragma once

#include <string>

namespace forklet::sandbox {

// Whether `int $0x80` reaches the kernel's 32-bit syscall table. Where it does, the seccomp
// filter kills it (SIGSYS: a foreign ABI); kernels without IA32 emulation (or booted with
// ia32_emulation=0) fault it before seccomp sees it (SIGSEGV). Either way no 32-bit syscall runs.
// Forks a child to try it: for single-threaded callers (tests, tools), not for the daemon.
bool HasIa32SyscallEntry();

// "v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 mount), from the file systems mounted.
std::string CgroupMode();

}  // namespace forklet::sandbox
