// The baselines, timed by the same program as forklet: a process run to completion
#include "bench/forklet_bench/baselines.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

extern char** environ;

namespace forklet::bench {
namespace {

// A child of forklet-bench starts with no signal blocked (its threads block SIGINT and SIGTERM).
void NoSignalBlocked(posix_spawnattr_t* attr) {
  posix_spawnattr_init(attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK);
}

}  // namespace

Result<pid_t> SpawnQuiet(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  NoSignalBlocked(&attr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return SysError("spawn " + args[0], rc);
  return pid;
}

Result<double> RunTimed(const std::vector<std::string>& args, std::string* capture) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out[2] = {-1, -1};
  if (capture && pipe2(out, O_CLOEXEC) != 0) return SysError("pipe");
  // Set up before the clock starts: only the spawn and the run are timed.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (capture)
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  else
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  NoSignalBlocked(&attr);

  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (capture) close(out[1]);
  if (rc != 0) {
    if (capture) close(out[0]);
    return SysError("spawn " + args[0], rc);
  }
  if (capture) {
    char buf[65536];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) capture->append(buf, static_cast<size_t>(n));
    close(out[0]);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return MakeError(args[0], "exited with status " + std::to_string(status) + " (run it by hand to see why)");
  return ms;
}

std::vector<std::string> BubblewrapArgv(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {
      "/usr/bin/bwrap", "--unshare-all", "--die-with-parent",
      "--ro-bind", "/usr", "/usr",
      "--symlink", "usr/lib", "/lib",
      "--symlink", "usr/lib64", "/lib64",
      "--symlink", "usr/bin", "/bin",
      "--proc", "/proc", "--dev", "/dev"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

Result<std::vector<double>> CloneFloorIterations(const std::string& clone_floor, int iterations) {
  std::string out;
  auto ran = RunTimed({clone_floor, "--iterations", std::to_string(iterations)}, &out);
  if (!ran) return ran.error();
  std::vector<double> ms;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') ms.push_back(std::stod(line) / 1000.0);  // us in the output
  if (ms.size() != static_cast<size_t>(iterations))
    return MakeError(clone_floor, "printed " + std::to_string(ms.size()) + " iterations, expected " +
                                      std::to_string(iterations));
  return ms;
}

}  // namespace forklet::bench
