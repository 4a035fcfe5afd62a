// The default-deny seccomp profile, compiled once with libseccomp to a plain BPF program.
#pragma once

#include <linux/filter.h>

#include <span>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox {

// A compiled filter: plain instructions that a forked child installs without allocating.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(instructions.size()),
                      const_cast<sock_filter*>(instructions.data())};
  }
};

// Allowlist modelled on Docker's default profile for x86-64. Everything else fails with EPERM
// (clone3 with ENOSYS so libc falls back to clone, whose namespace flags are then checked).
// Denied among others: mount/umount, pivot_root, ptrace, process_vm_*, bpf, keyctl/add_key,
// kexec_*, *_module, unshare, setns, clone with namespace flags, perf_event_open, userfaultfd,
// io_uring_*, ioctl(TIOCSTI, TIOCLINUX), reboot, swapon, acct, open_by_handle_at, personality
// changes, socket families other than unix, inet, inet6 and netlink. Only the native ABI is
// accepted: a 32-bit (int 0x80) or x32 syscall kills the process.
// Runs in the daemon, once: about a millisecond.
Result<SeccompProgram> CompileDefaultPolicy();

// Syscalls the default policy is meant to refuse with EPERM, for docs and tests. Not the whole
// deny set (everything not allowed is refused); names this libseccomp or ABI lacks are included.
std::span<const char* const> DeniedSyscallNames();

// Child side, async-signal-safe, one-way: installs the filter. Requires no_new_privs already set.
// Returns 0 or -errno.
int InstallSeccompInChild(const sock_fprog* prog);

}  // namespace forklet::sandbox
