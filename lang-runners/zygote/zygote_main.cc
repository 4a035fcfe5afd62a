// forklet-zygote: the zygote of the runtimes whose runner is C++ (native, provided, nodejs), and
// python3's cold-start fork server (its children exec Python: lang-runners/python/python_mode.cc).
//
// Started by forkletd as `forklet-zygote MODE` (python3: `forklet-zygote python3 INTERPRETER`)
// with the control socket at fd 3. It boots in well under a millisecond (no static initialisers
// of its own, single-threaded), serves fork requests with libforklet_zygote.so and, in each
// sandboxed child, hands the instance to MODE's runner.
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
    {"python3", forklet::runner::RunPython},
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t t0 = forklet::runner::MonotonicMicros();
  const Mode* mode = nullptr;
  for (const auto& m : kModes)
    if (argc >= 2 && strcmp(argv[1], m.name) == 0) mode = &m;
  const bool python = mode && mode->run == forklet::runner::RunPython;
  if (!mode || argc != (python ? 3 : 2)) {
    fprintf(stderr, "usage: forklet-zygote native|provided|nodejs|python3 INTERPRETER (control socket at fd 3)\n");
    return 2;
  }
  if (python) forklet::runner::SetPythonInterpreter(argv[2]);
  auto boot_us = static_cast<uint32_t>(forklet::runner::MonotonicMicros() - t0);
  // Returns only in a forked, sandboxed child (0), or when the daemon has gone (-1).
  if (forklet_zygote_serve(kControlFd, boot_us) != 0) return 0;
  return mode->run();
}
