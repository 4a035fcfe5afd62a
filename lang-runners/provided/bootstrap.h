// Starting the function's own runtime: /var/task/bootstrap, with the Runtime API's address.
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

namespace forklet::runner {

constexpr const char* kBootstrapPath = "/var/task/bootstrap";

struct Spawned {
  pid_t pid = -1;
  std::string error_type;  // when pid < 0: Lambda's errorType and errorMessage of the init error
  std::string error_message;
};

// Runs kBootstrapPath in /var/task with env (INIT's environment) plus AWS_LAMBDA_RUNTIME_API, its
// stdio the instance's (fd 0 /dev/null, fds 1 and 2 the log) and nothing else: every other fd of
// the runner is close-on-exec. The signal mask is emptied for it.
Spawned SpawnBootstrap(const nlohmann::json& env, const std::string& runtime_api);

}  // namespace forklet::runner
