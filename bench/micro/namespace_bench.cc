// Namespace creation: clone() with each of the sandbox's namespace flags and with all of them,
// the child _exits at once, the parent reaps it. Flags 0 is a plain fork of this small process.
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include "sandbox/child_setup.h"

namespace {

void BM_CloneAndReap(benchmark::State& state) {
  const long flags = state.range(0);
  for (auto _ : state) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) {
      state.SkipWithError("clone failed (run as root)");
      return;
    }
    while (waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  const char* name = flags == 0 ? "fork (no namespaces)"
                     : flags == CLONE_NEWPID ? "NEWPID"
                     : flags == CLONE_NEWNS ? "NEWNS"
                     : flags == CLONE_NEWIPC ? "NEWIPC"
                     : flags == CLONE_NEWUTS ? "NEWUTS"
                     : flags == CLONE_NEWNET ? "NEWNET"
                     : flags == CLONE_NEWCGROUP ? "NEWCGROUP"
                     : flags == forklet::sandbox::kSandboxCloneFlags ? "all sandbox flags"
                                                                     : "?";
  state.SetLabel(name);
}
BENCHMARK(BM_CloneAndReap)
    ->Arg(0)
    ->Arg(CLONE_NEWPID)
    ->Arg(CLONE_NEWNS)
    ->Arg(CLONE_NEWIPC)
    ->Arg(CLONE_NEWUTS)
    ->Arg(CLONE_NEWNET)
    ->Arg(CLONE_NEWCGROUP)
    ->Arg(forklet::sandbox::kSandboxCloneFlags)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
