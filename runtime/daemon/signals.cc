// The signals forkletd acts on (SIGTERM and SIGINT: drain and stop; SIGHUP: reload), turned into
#include "runtime/daemon/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace forklet::daemon {
namespace {

int g_pipe[2] = {-1, -1};

void OnSignal(int signo) {
  const int saved = errno;
  const unsigned char c = static_cast<unsigned char>(signo);
  (void)!write(g_pipe[1], &c, 1);  // async-signal-safe: main does the work
  errno = saved;
}

}  // namespace

Status InstallSignalEvents() {
  if (pipe2(g_pipe, O_CLOEXEC) != 0) return SysError("pipe for signals");
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  for (int signo : {SIGTERM, SIGINT, SIGHUP})
    if (sigaction(signo, &sa, nullptr) != 0) return SysError("sigaction");
  return {};
}

int WaitForSignal() {
  unsigned char c = 0;
  for (;;) {
    ssize_t n = read(g_pipe[0], &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe broke: nothing can wake us any more, so stop
  }
}

}  // namespace forklet::daemon
