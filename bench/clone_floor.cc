// forklet-clone-floor: the floor under any sandbox start on this machine. It does only what no
// instance can skip: clone() with the sandbox's namespace flags, the child's attach to a cgroup
// (the same pre-opened cgroup.procs writes forklet's children make), _exit, and the parent's wait.
//
// usage: forklet-clone-floor [--iterations N]   (as root)
// Prints one line per iteration: its time in microseconds (clone to reaped child).
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/child_setup.h"

using namespace forklet;

int main(int argc, char** argv) {
  int iterations = 1000;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
      iterations = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: forklet-clone-floor [--iterations N]\n");
      return 2;
    }
  }
  if (iterations < 1) iterations = 1;
  // forklet.floor<pid> below this process's own cgroup, one leaf in it: made before timing.
  auto tree = sandbox::OpenCgroupTree("floor" + std::to_string(getpid()));
  if (!tree) {
    fprintf(stderr, "forklet-clone-floor: %s\n", tree.error().ToString().c_str());
    return 1;
  }
  int rc = 0;
  {
    auto cgroup = (*tree)->Create("leaf");
    if (!cgroup) {
      fprintf(stderr, "forklet-clone-floor: %s\n", cgroup.error().ToString().c_str());
      (void)(*tree)->RemoveRoot();
      return 1;
    }
    auto fds = (*cgroup)->OpenProcsFds();
    if (!fds) {
      fprintf(stderr, "forklet-clone-floor: %s\n", fds.error().ToString().c_str());
      (void)(*cgroup)->Destroy();
      (void)(*tree)->RemoveRoot();
      return 1;
    }
    std::vector<double> us;
    us.reserve(static_cast<size_t>(iterations));
    for (int i = 0; i < iterations && rc == 0; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      long pid = syscall(SYS_clone, sandbox::kSandboxCloneFlags | SIGCHLD, 0, 0, 0, 0);
      if (pid == 0) {
        for (int fd : *fds)
          if (write(fd, "0", 1) != 1) _exit(1);
        _exit(0);
      }
      if (pid < 0) {
        perror("forklet-clone-floor: clone");
        rc = 1;
        break;
      }
      int status = 0;
      while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
      }
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "forklet-clone-floor: the child could not attach to its cgroup\n");
        rc = 1;
      }
    }
    for (int fd : *fds) close(fd);
    if (auto s = (*cgroup)->Destroy(); !s) fprintf(stderr, "forklet-clone-floor: %s\n", s.error().ToString().c_str());
    if (rc == 0)
      for (double v : us) printf("%.3f\n", v);
  }
  if (auto s = (*tree)->RemoveRoot(); !s) fprintf(stderr, "forklet-clone-floor: %s\n", s.error().ToString().c_str());
  return rc;
}
