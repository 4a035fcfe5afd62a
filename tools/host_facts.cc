// forklet-host-facts: what this host offers the sandbox, one line each (the test run starts with it).
#include <sys/utsname.h>

#include <cstdio>

#include "sandbox/host_probe.h"

int main() {
  utsname u{};
  uname(&u);
  std::printf("kernel: %s %s\n", u.release, u.machine);
  std::printf("cgroups: %s\n", forklet::sandbox::CgroupMode().c_str());
  std::printf("32-bit syscall entry (int $0x80): %s\n",
              forklet::sandbox::HasIa32SyscallEntry() ? "yes (seccomp kills it: SIGSYS)"
                                                      : "no (the CPU faults it: SIGSEGV)");
  return 0;
}
