// Probes of the host's kernel: the 32-bit syscall entry and the cgroup mode.
#include "sandbox/host_probe.h"

#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "sandbox/cgroup_lib.h"

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

// libcgroup's mount table decides; it does not list a cgroup2 mount without controllers
// (systemd's hybrid layout binds every controller to v1 and mounts an empty unified hierarchy), so
// a cgroup2 mount beside v1 hierarchies is looked for in /proc/self/mounts when it says "v1".
std::string CgroupMode() {
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return "v2";
  auto table = cglib::Mounts();
  if (!table) return "unknown (" + table.error().ToString() + ")";
  if (table->mode != cglib::Mode::kV1) return cglib::ModeName(table->mode);
  std::ifstream mounts("/proc/self/mounts");
  for (std::string dev, point, type, rest; mounts >> dev >> point >> type && std::getline(mounts, rest);)
    if (type == "cgroup2") return "hybrid";
  return "v1";
}

}  // namespace forklet::sandbox
