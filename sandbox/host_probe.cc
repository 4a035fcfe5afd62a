// Probes of the host's kernel: the 32-bit syscall entry and the cgroup mode.
#include "sandbox/host_probe.h"

#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace forklet::sandbox {

bool HasIa32SyscallEntry() {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    long ret = 20;  // getpid in the i386 table
    asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
    _exit(ret > 0 ? 0 : 1);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string CgroupMode() {
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return "v2";
  std::ifstream mounts("/proc/self/mounts");
  bool v1 = false, v2 = false;
  for (std::string dev, point, type, rest; mounts >> dev >> point >> type && std::getline(mounts, rest);) {
    v1 = v1 || type == "cgroup";
    v2 = v2 || type == "cgroup2";
  }
  return v1 && v2 ? "hybrid" : v1 ? "v1" : v2 ? "v2" : "none";
}

}  // namespace forklet::sandbox
