// posix_spawn of nft (the daemon is multithreaded: spawn, never fork), its stderr kept for errors.
#include "sandbox/net/nft.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

extern char** environ;

namespace forklet::sandbox::net {

std::string DeleteTableScript(const std::string& family, const std::string& table) {
  // nft 1.0.6 has no `destroy`: adding first makes the delete succeed whether or not it existed.
  return "add table " + family + " " + table + "\ndelete table " + family + " " + table + "\n";
}

Status RunNft(const std::string& script, const std::string& nft) {
  std::string exe = nft;
  if (exe.empty()) exe = access("/usr/sbin/nft", X_OK) == 0 ? "/usr/sbin/nft" : "nft";
  int in[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return SysError("pipe");
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return SysError("pipe", e);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const char* argv[] = {exe.c_str(), "-f", "-", nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, exe.c_str(), &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(err[0]);
    return Error{"run " + exe, rc, "install the nftables package (tools/setup.sh) or use --function-network=none"};
  }
  // nft reads its whole script before it answers (forkletd ignores SIGPIPE should nft die early).
  for (size_t off = 0; off < script.size();) {
    ssize_t n = write(in[1], script.data() + off, script.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(in[1]);
  std::string message;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (message.size() < 16384) message.append(buf, static_cast<size_t>(n));
  }
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return MakeError("nft", message.empty() ? "exit status " + std::to_string(status) : message);
}

}  // namespace forklet::sandbox::net
