// The python3 runtime's cold start: the sandboxed child execs a fresh interpreter with forklet's
// runner (forklet-zygote's `python3` mode).
//
// A function whose runtime has no zygote ready for it would wait for one to boot (~30 ms here)
// and then for its first child (~12 ms of copy-on-write faults over what the boot just wrote).
// Instead the launcher forks the instance from this small fork server, and the child boots
// Python in its own sandbox; the function's zygote boots once that start has ended, for its
// later instances (Launcher::ForkSource, ZygoteBank::For with may_boot false). The interpreter
// runs as the Python zygote runs it (-I -S -B); forklet_instance comes from /var/runtime/python
// (the template root binds the runners there, bytecode included).
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"
#include "zygote/zygote_server.h"

namespace forklet::runner {
namespace {

// A copy: the zygote may rewrite its argv's memory (its process title).
std::string& Python() {
  static std::string path = "/usr/bin/python3";
  return path;
}

}  // namespace

void SetPythonInterpreter(const char* path) { Python() = path; }

int RunPython() {
  // When it exec'd, in CLOCK_MONOTONIC microseconds (Python's time.monotonic_ns clock): the
  // runner reports its boot (BOOTED) from it, as a stage of this start.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto exec_us = static_cast<unsigned long long>(now.tv_sec) * 1000000ull +
                       static_cast<unsigned long long>(now.tv_nsec / 1000);
  char code[256];
  snprintf(code, sizeof(code),
           "import sys; sys.path.insert(0, '/var/runtime/python'); import forklet_instance; "
           "sys.path.pop(0); sys.exit(forklet_instance.serve(exec_us=%llu))",
           exec_us);
  const char* argv[] = {"python3", "-I", "-S", "-B", "-c", code, nullptr};
  // The Python zygote's environment until INIT brings the function's.
  const char* envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", nullptr};
  execve(Python().c_str(), const_cast<char**>(argv), const_cast<char**>(envp));
  std::string message = std::string("cannot run ") + Python() + ": " + strerror(errno);
  SendInitError("Runtime.ExitError", message, 0);
  return 127;
}

}  // namespace forklet::runner
