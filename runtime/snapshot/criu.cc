// Running criu: detection, the dump and restore command lines, and the checkpoint's manifest.
#include "runtime/snapshot/criu.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

extern char** environ;

namespace forklet::snapshot {
namespace {

constexpr const char* kSetupScriptCriu = "/opt/forklet/criu/bin/criu";
constexpr const char* kManifest = "forklet.json";  // beside criu's images
constexpr int kFirstKeptFd = 10;
constexpr int kFirstJoinFd = 20;
constexpr int kRestoreTimeoutMs = 10000;
constexpr int kSelfTestTimeoutMs = 10000;  // each of its two steps

std::string Key(const std::string& mount_point) {
  std::string k = "m";
  for (char c : mount_point) k += c == '/' ? '_' : c;
  return k;
}

std::string ReadLink(const std::string& path) {
  char buf[256];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

std::string Tail(const std::string& path, size_t lines) {
  std::ifstream f(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(f, line);)  // (criu's own nofile limit: always, harmless)
    if (line.find("Error") != std::string::npos && line.find("RLIMIT_NOFILE for self") == std::string::npos)
      all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

// posix_spawn with fds 0-2 on /dev/null (stdout to `out` when given), `dups` to fds from 10 on; in
// a process group of its own, or with `session` a session of its own.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::vector<std::pair<int, int>>& dups, int out, bool session = false) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out >= 0)
    posix_spawn_file_actions_adddup2(&actions, out, 1);
  else
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  // Sources above every target first: a source numbered like an earlier target would be
  // overwritten by that earlier dup2.
  std::vector<int> high;
  for (auto [from, to] : dups) {
    int fd = fcntl(from, F_DUPFD_CLOEXEC, 100);
    if (fd < 0) {
      for (int h : high) close(h);
      posix_spawn_file_actions_destroy(&actions);
      return SysError("spawn: dup");
    }
    high.push_back(fd);
    posix_spawn_file_actions_adddup2(&actions, fd, to);  // clears CLOEXEC on `to`
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout kills criu and its helpers
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      (session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP));
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp.data());
  for (int h : high) close(h);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return SysError("spawn " + argv[0], rc);
  return pid;
}

// Waits up to timeout_ms (then kills its process group): -2 on a timeout.
int WaitAtMost(pid_t pid, int timeout_ms) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  bool timed_out = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    close(pidfd);
    if (rc == 0) {
      timed_out = true;
      kill(-pid, SIGKILL);
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (timed_out) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs a short command, returns its exit code (-2: killed at its 20 s deadline) and stdout.
int Capture(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            std::string* out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  auto pid = Spawn(argv, env, {}, p[1]);
  close(p[1]);
  if (!pid) {
    close(p[0]);
    return -1;
  }
  // Read until EOF or the deadline (a helper that keeps the pipe open cannot hold us up).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{p[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) == 0) break;
    ssize_t n = read(p[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out->size() < 65536) out->append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return WaitAtMost(*pid, std::max<int>(1, static_cast<int>(left.count())));
}

// A failed restore may have made the copy's first process already: criu kills it, but as criu's
// sibling it is the daemon's child, so the daemon reaps it (named in criu's log).
void ReapFailedCopy(const std::string& log) {
  std::ifstream f(log);
  for (std::string line; std::getline(f, line);) {
    auto at = line.find("PID: real ");
    if (at == std::string::npos || line.find(" virt 1", at) == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(atoi(line.c_str() + at + 10));
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(stat, text);
    auto close_paren = text.rfind(')');
    if (pid <= 0 || close_paren == std::string::npos) return;
    std::istringstream rest(text.substr(close_paren + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != getpid()) return;  // not ours (anymore): nothing to reap
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return;
  }
}

std::vector<std::string> CriuEnv(const std::string& preload) {
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
  if (!preload.empty()) env.push_back("LD_PRELOAD=" + preload);
  return env;
}

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string Criu::SelfTest(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(dir, ec);
  const std::string images = dir + "/images";
  fs::create_directories(images, ec);
  if (ec) return "create " + images + ": " + ec.message();
  struct Cleanup {
    std::string dir;
    pid_t source = -1, copy = -1;
    ~Cleanup() {
      KillAndReap(source);
      KillAndReap(copy);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  // A session leader, as criu wants a tree without --shell-job; the daemon's child, so that its
  // pid is free again (reaped) for the restore.
  auto source = Spawn({"/bin/sleep", "600"}, CriuEnv(""), {}, -1, /*session=*/true);
  if (!source) return source.error().ToString();
  cleanup.source = *source;
  const std::string exe = "/proc/" + std::to_string(*source) + "/exe";
  for (int i = 0; i < 200 && ReadLink(exe).find("sleep") == std::string::npos; ++i) usleep(5000);
  auto t0 = std::chrono::steady_clock::now();
  const std::string dump_log = images + "/dump.log";
  if (auto s = Run({"dump", "-t", std::to_string(*source), "-D", images, "-o", dump_log, "-v4"}, {}, {},
                   dump_log, kSelfTestTimeoutMs);
      !s)
    return s.error().ToString();
  KillAndReap(*source);  // criu killed it: reaped, its pid is free
  cleanup.source = -1;
  auto t1 = std::chrono::steady_clock::now();
  const std::string restore_log = images + "/restore.log", pidfile = dir + "/restored.pid";
  auto s = Run({"restore", "-D", images, "-o", restore_log, "-v4", "--restore-detached", "--restore-sibling",
                "--pidfile", pidfile},
               {}, {}, restore_log, kSelfTestTimeoutMs);
  if (!s) {
    ReapFailedCopy(restore_log);
    return s.error().ToString();
  }
  std::string pid_text;
  std::ifstream(pidfile) >> pid_text;
  cleanup.copy = static_cast<pid_t>(atoi(pid_text.c_str()));
  if (cleanup.copy <= 0 || ReadLink("/proc/" + pid_text + "/exe").find("sleep") == std::string::npos)
    return "criu restore: the restored process is not running";
  auto ms = [](auto d) { return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
  info_.self_test = "passed: a process dumped in " + ms(t1 - t0) + " ms and restored in " +
                    ms(std::chrono::steady_clock::now() - t1) + " ms";
  return "";
}

std::unique_ptr<Criu> Criu::Detect(const std::string& path, const std::string& preload,
                                   const std::string& scratch_dir) {
  std::unique_ptr<Criu> c(new Criu());
  c->preload_ = access(preload.c_str(), R_OK) == 0 ? preload : "";
  std::vector<std::string> candidates;
  if (!path.empty()) {
    candidates.push_back(path);
  } else {
    candidates.push_back(kSetupScriptCriu);
    for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/usr/local/bin", "/usr/bin"})
      candidates.push_back(std::string(dir) + "/criu");
  }
  c->info_.reason = path.empty() ? "criu is not installed (tools/setup-criu.sh installs it)"
                                 : "no executable criu at " + path;
  for (const auto& candidate : candidates) {
    if (access(candidate.c_str(), X_OK) != 0) continue;
    std::string out;
    if (Capture({candidate, "check"}, CriuEnv(c->preload_), &out) != 0) {
      c->info_.reason = "`" + candidate + " check` fails on this kernel";
      continue;
    }
    std::string version;
    Capture({candidate, "--version"}, CriuEnv(c->preload_), &version);
    auto at = version.find("Version: ");
    if (at != std::string::npos) {
      version = version.substr(at + 9);
      version = version.substr(0, version.find('\n'));
    }
    c->info_ = CriuInfo{false, candidate, version, {}, {}};
    if (std::string failed = c->SelfTest(scratch_dir); !failed.empty()) {
      c->info_.self_test = "failed: " + failed;
      c->info_.reason = "criu " + version + " at " + candidate + " fails its self-test (a checkpoint and "
                        "restore of a trivial process): " + failed;
      continue;
    }
    c->info_.available = true;
    break;
  }
  return c;
}

Status Criu::Run(const std::vector<std::string>& args, const std::vector<int>& keep,
                 const std::vector<int>& join, const std::string& log, int timeout_ms) {
  std::vector<std::string> argv;
  std::vector<std::pair<int, int>> dups;
  for (size_t i = 0; i < keep.size(); ++i) dups.emplace_back(keep[i], kFirstKeptFd + static_cast<int>(i));
  if (!join.empty()) {
    // criu's processes start in criu's cgroups: a shell moves itself there, then becomes criu.
    std::string fds;
    for (size_t i = 0; i < join.size(); ++i) {
      dups.emplace_back(join[i], kFirstJoinFd + static_cast<int>(i));
      fds += (i ? " " : "") + std::to_string(kFirstJoinFd + static_cast<int>(i));
    }
    argv = {"/bin/bash", "-c",  // bash: dash takes only fds 0-9 in redirections
            "for fd in $0; do echo 0 2>>\"$1\" >&$fd || exit 125; eval \"exec $fd>&-\"; done; "
            "shift; exec \"$@\"",
            fds, log};
  }
  argv.push_back(info_.path);
  argv.insert(argv.end(), args.begin(), args.end());
  auto pid = Spawn(argv, CriuEnv(preload_), dups, -1);
  if (!pid) return pid.error();
  int code = WaitAtMost(*pid, timeout_ms);
  if (code == 0) return {};
  if (code == -2)
    return MakeError("criu " + args[0], "no answer in " + std::to_string(timeout_ms / 1000) + " s: killed");
  if (code == 125) {
    std::ifstream f(log);
    std::string line, last;
    while (std::getline(f, line)) last = line;
    return MakeError("criu " + args[0], "could not join the instance's cgroup: " + last);
  }
  return MakeError("criu " + args[0], "exit " + std::to_string(code) + ": " + Tail(log, 3));
}

Status Criu::Dump(const DumpRequest& r) {
  const std::string proc = "/proc/" + std::to_string(r.pid);
  nlohmann::json manifest{{"channel", ReadLink(proc + "/fd/3")},
                          {"log", ReadLink(proc + "/fd/1")},
                          {"host_mounts", r.host_mounts}};
  const std::string channel = manifest["channel"], log_pipe = manifest["log"];
  const std::string netns = ReadLink(proc + "/ns/net");
  if (channel.rfind("socket:[", 0) != 0 || log_pipe.rfind("pipe:[", 0) != 0 || netns.empty())
    return MakeError("criu dump", "the instance's channel, log or net namespace is not where expected");
  const std::string log = r.images_dir + "/dump.log";
  std::vector<std::string> args = {
      "dump", "-t", std::to_string(r.pid), "-D", r.images_dir, "-o", log,
      // Its net namespace, channel and log are the daemon's: each restore gets new ones.
      "--network-lock", "skip", "--external", "net[" + netns.substr(5, netns.size() - 6) + "]:netns",
      "--ext-unix-sk", "--external", "unix[" + channel.substr(8, channel.size() - 9) + "]"};
  for (const auto& m : r.host_mounts) {
    args.push_back("--external");
    args.push_back("mnt[" + m + "]:" + Key(m));
  }
  if (auto s = Run(args, {}, {}, log, r.timeout_ms); !s) return s;
  // Each image's size: a restore refuses a snapshot whose files changed size (truncated, torn).
  nlohmann::json sizes = nlohmann::json::object();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(r.images_dir, ec))
    if (e.path().extension() == ".img") sizes[e.path().filename().string()] = e.file_size(ec);
  manifest["image_bytes"] = sizes;
  std::ofstream f(r.images_dir + "/" + kManifest);
  f << manifest.dump();
  if (!f) return SysError("write " + r.images_dir + "/" + kManifest);
  return {};
}

Result<pid_t> Criu::Restore(const RestoreRequest& r) {
  std::ifstream f(r.images_dir + "/" + kManifest);
  auto manifest = nlohmann::json::parse(f, nullptr, false);
  if (!manifest.is_object() || !manifest.value("channel", nlohmann::json()).is_string() ||
      !manifest.value("log", nlohmann::json()).is_string() ||
      !manifest.value("host_mounts", nlohmann::json()).is_array())
    return MakeError("criu restore", "the snapshot has no valid manifest");
  const auto image_bytes = manifest.value("image_bytes", nlohmann::json::object());
  for (const auto& [name, bytes] : image_bytes.items()) {
    struct stat st;
    if (name.find('/') != std::string::npos || !bytes.is_number_unsigned() ||
        stat((r.images_dir + "/" + name).c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) != bytes)
      return MakeError("criu restore", "the snapshot's image " + name + " is damaged");
  }
  const std::string log = r.images_dir + "/restore-" + std::to_string(getpid()) + "-" +
                          std::to_string(r.channel_fd) + ".log";
  const std::string pidfile = log + ".pid";
  std::vector<std::string> args = {
      "restore", "-D", r.images_dir, "-o", log, "-v4", "--root", r.root_dir, "--pidfile", pidfile,
      "--restore-detached", "--restore-sibling", "--manage-cgroups=ignore",
      "--inherit-fd", "fd[" + std::to_string(kFirstKeptFd) + "]:" + manifest["channel"].get<std::string>(),
      "--inherit-fd", "fd[" + std::to_string(kFirstKeptFd + 1) + "]:" + manifest["log"].get<std::string>(),
      "--inherit-fd", "fd[" + std::to_string(kFirstKeptFd + 2) + "]:netns"};
  for (const auto& m : manifest["host_mounts"]) {
    if (!m.is_string()) return MakeError("criu restore", "the snapshot's manifest is invalid");
    auto src = r.mount_sources.find(m.get<std::string>());
    if (src == r.mount_sources.end())
      return MakeError("criu restore", "no host source for the mount " + m.get<std::string>());
    args.push_back("--external");
    args.push_back("mnt[" + Key(m.get<std::string>()) + "]:" + src->second);
  }
  auto s = Run(args, {r.channel_fd, r.log_fd, r.net_fd}, r.cgroup_procs_fds, log, kRestoreTimeoutMs);
  std::string pid_text;
  std::ifstream(pidfile) >> pid_text;
  unlink(pidfile.c_str());
  if (!s) {
    ReapFailedCopy(log);
    return s.error();  // the log stays for a look at why
  }
  unlink(log.c_str());
  pid_t pid = static_cast<pid_t>(atoi(pid_text.c_str()));
  if (pid <= 0) return MakeError("criu restore", "no pid file");
  return pid;
}

Result<std::vector<std::string>> HostMounts(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/mountinfo");
  if (!f) return SysError("read mountinfo of " + std::to_string(pid));
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::istringstream in(line);
    std::string id, parent, dev, root, point, word;
    in >> id >> parent >> dev >> root >> point;
    while (in >> word && word != "-") {
    }
    std::string fstype;
    in >> fstype;
    if (fstype == "tmpfs" || fstype == "proc" || point == "/" || point.rfind("/proc/", 0) == 0)
      continue;
    out.push_back(point);
  }
  return out;
}

uint64_t EstimateDumpBytes(pid_t root) {
  uint64_t bytes = 0;
  std::vector<pid_t> todo{root};
  for (size_t i = 0; i < todo.size() && i < 4096; ++i) {
    const std::string proc = "/proc/" + std::to_string(todo[i]);
    std::ifstream rollup(proc + "/smaps_rollup");
    for (std::string line; std::getline(rollup, line);)
      if (line.rfind("Rss:", 0) == 0) bytes += std::strtoull(line.c_str() + 4, nullptr, 10) * 1024;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(proc + "/task", ec)) {
      std::ifstream children(task.path() / "children");
      for (pid_t child; children >> child;) todo.push_back(child);
    }
  }
  return bytes;
}

}  // namespace forklet::snapshot
