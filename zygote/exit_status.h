// How an instance's exit is told to users, in the wording of Lambda's messages (Go's): "exit
// status 3", "signal: segmentation fault". Shared by the daemon and the runners.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <string>

namespace forklet::zygote {

inline std::string DescribeExit(int wait_status) {
  if (!WIFSIGNALED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  switch (WTERMSIG(wait_status)) {
    case SIGKILL: return "signal: killed";
    case SIGSEGV: return "signal: segmentation fault";
    case SIGABRT: return "signal: aborted";
    case SIGTERM: return "signal: terminated";
    case SIGBUS: return "signal: bus error";
    case SIGFPE: return "signal: floating point exception";
    case SIGILL: return "signal: illegal instruction";
    case SIGPIPE: return "signal: broken pipe";
    case SIGINT: return "signal: interrupt";
    case SIGHUP: return "signal: hangup";
    default: return "signal " + std::to_string(WTERMSIG(wait_status));
  }
}

}  // namespace forklet::zygote
