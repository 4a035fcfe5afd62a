// Timing a one-way operation (a seccomp filter, a cgroup move) where it happens: in a forked
// child, measured there and sent back over a pipe, so the fork itself is not counted.
#pragma once

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace forklet::micro {

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Forks; the child runs before() untimed, then op() timed, and _exits. Returns op's time in
// seconds, or a negative value when op() returned non-zero or the child failed.
template <typename Before, typename Op>
double TimeInForkedChild(Before before, Op op) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    before();
    uint64_t t0 = NowNs();
    int rc = op();
    uint64_t dt = NowNs() - t0;
    if (rc != 0) dt = UINT64_MAX;
    (void)!write(p[1], &dt, sizeof(dt));
    _exit(0);
  }
  close(p[1]);
  uint64_t dt = UINT64_MAX;
  if (pid < 0 || read(p[0], &dt, sizeof(dt)) != sizeof(dt)) dt = UINT64_MAX;
  close(p[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return dt == UINT64_MAX ? -1 : static_cast<double>(dt) / 1e9;
}

}  // namespace forklet::micro
