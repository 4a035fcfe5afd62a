// The provided runtime's instance: serve the Lambda Runtime API to the function's own bootstrap.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "lang-runners/provided/bootstrap.h"
#include "lang-runners/provided/runtime_api.h"
#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"
#include "sandbox/child_setup.h"

namespace forklet::runner {

int RunProvided() {
  // The channel is the runner's alone: the bootstrap must not inherit it.
  fcntl(sandbox::kChannelFd, F_SETFD, FD_CLOEXEC);
  auto init = ReadInit();
  if (!init) return 2;
  uint64_t t0 = MonotonicMicros();
  ApplyEnvironment(init->env);
  if (chdir("/var/task") != 0) perror("chdir /var/task");
  std::string error;
  auto server = RuntimeApiServer::Create(*init, &error);
  if (!server) {
    SendInitError("Runtime.Unknown", "Runtime API: " + error, MonotonicMicros() - t0);
    return 1;
  }
  Spawned bootstrap = SpawnBootstrap(init->env, kRuntimeApiAddress);
  if (bootstrap.pid < 0) {
    SendInitError(bootstrap.error_type, bootstrap.error_message, MonotonicMicros() - t0);
    return 1;
  }
  return server->Run(bootstrap.pid, t0);
}

}  // namespace forklet::runner
