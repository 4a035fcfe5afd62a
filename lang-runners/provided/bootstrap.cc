// posix_spawn of /var/task/bootstrap: exec errors come back synchronously as the init error.
#include "lang-runners/provided/bootstrap.h"

#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>

#include <cctype>
#include <vector>

namespace forklet::runner {
namespace {

constexpr const char* kInvalidEntrypoint = "Runtime.InvalidEntrypoint";

// Go's strings for the common errnos ("permission denied"), which Lambda's messages carry.
std::string LowerError(int err) {
  std::string s = strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(tolower(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

Spawned SpawnBootstrap(const nlohmann::json& env, const std::string& runtime_api) {
  Spawned out;
  struct stat st;
  if (stat(kBootstrapPath, &st) != 0 || !S_ISREG(st.st_mode)) {
    out.error_type = kInvalidEntrypoint;
    out.error_message = std::string("Couldn't find valid bootstrap(s): [") + kBootstrapPath + "]";
    return out;
  }
  std::vector<std::string> vars;
  for (const auto& [k, v] : env.items())
    if (v.is_string() && k != "AWS_LAMBDA_RUNTIME_API") vars.push_back(k + "=" + v.get<std::string>());
  vars.push_back("AWS_LAMBDA_RUNTIME_API=" + runtime_api);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(kBootstrapPath), nullptr};

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int err = posix_spawn(&pid, kBootstrapPath, nullptr, &attr, argv, envp.data());
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    out.error_type = kInvalidEntrypoint;
    out.error_message = std::string("fork/exec ") + kBootstrapPath + ": " + LowerError(err);
    return out;
  }
  out.pid = pid;
  return out;
}

}  // namespace forklet::runner
