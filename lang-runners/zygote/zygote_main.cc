// forklet-zygote: the zygote of the runtimes whose runner is C++ (native, provided, nodejs).
//
// Started by forkletd as `forklet-zygote MODE` with the control socket at fd 3. It boots in well
// under a millisecond (no static initialisers of its own, single-threaded), serves fork requests
// with libforklet_zygote.so and, in each sandboxed child, hands the instance to MODE's runner.
#include <cstdio>
#include <cstring>

#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"
#include "zygote/zygote_server.h"

namespace {

constexpr int kControlFd = 3;

struct Mode {
  const char* name;
  int (*run)();
};
constexpr Mode kModes[] = {
    {"native", forklet::runner::RunNative},
    {"provided", forklet::runner::RunProvided},
    {"nodejs", forklet::runner::RunNodejs},
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t t0 = forklet::runner::MonotonicMicros();
  const Mode* mode = nullptr;
  for (const auto& m : kModes)
    if (argc == 2 && strcmp(argv[1], m.name) == 0) mode = &m;
  if (!mode) {
    fprintf(stderr, "usage: forklet-zygote native|provided|nodejs (control socket at fd 3)\n");
    return 2;
  }
  auto boot_us = static_cast<uint32_t>(forklet::runner::MonotonicMicros() - t0);
  // Returns only in a forked, sandboxed child (0), or when the daemon has gone (-1).
  if (forklet_zygote_serve(kControlFd, boot_us) != 0) return 0;
  return mode->run();
}
