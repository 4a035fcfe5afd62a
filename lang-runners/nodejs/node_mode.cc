// The nodejs runtime's instance: the sandboxed child execs Node with forklet's runner.
//
// Node is multithreaded (V8's platform workers, libuv's thread pool) from its first
// milliseconds, so a booted Node cannot be forked safely: forklet-zygote forks the sandboxed
// child, and the child boots Node. forklet_runner.js (bound read-only at /var/runtime/nodejs)
// reports BOOTED, waits for INIT and loads the function. Pre-booted stem cells
// (runtime/core/stem_cells.h) take the boot off a new instance's path.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"
#include "zygote/zygote_server.h"

namespace forklet::runner {
namespace {

constexpr char kNode[] = "/usr/bin/node";
constexpr char kRunner[] = "/var/runtime/nodejs/forklet_runner.js";

}  // namespace

int RunNodejs() {
  // A snapshot's source (kForkExecRunner): its own session, as CRIU needs ("A session leader of N
  // is outside of its pid namespace"); Node execs in the sandbox either way.
  if (forklet_zygote_child_execs()) setsid();
  // No flags: measured on this runner, --v8-pool-size=0, --single-threaded, --jitless,
  // --max-semi-space-size=1 and --max-lazy all boot within noise of the default (~25-35 ms of CPU,
  // Node's own start from its built-in snapshot), and each changes how functions run.
  const char* argv[] = {"node", kRunner, nullptr};
  // The environment until INIT brings the function's. Nothing of the host's: NODE_OPTIONS or
  // NODE_EXTRA_CA_CERTS there would change (or slow: 35 ms for a CA bundle) every instance.
  // io_uring: the seccomp policy denies it, so libuv need not probe for it.
  const char* envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TZ=:UTC", "HOME=/tmp",
                        "UV_USE_IO_URING=0", nullptr};
  execve(kNode, const_cast<char**>(argv), const_cast<char**>(envp));
  // The daemon reads this as the runtime failing to start (a stem cell) or the function's init
  // failing (a cold start).
  std::string message = std::string("cannot run ") + kNode + ": " + strerror(errno);
  SendInitError("Runtime.ExitError", message, 0);
  return 127;
}

}  // namespace forklet::runner
