#include "tests/integration/daemon.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "runtime/api/http_server.h"

extern char** environ;

namespace forklet::testing {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::string TempPath(const std::string& prefix) {
  static int counter = 0;
  return "/tmp/" + prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

CmdResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              int timeout_s) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto envs = Environment(env);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  CmdResult r;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    r.err = "spawn " + argv[0] + ": " + strerror(rc);
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd p[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now()).count());
    if (ms <= 0) {
      kill(pid, SIGKILL);
      r.err += "\n[test harness: killed after " + std::to_string(timeout_s) + " s]";
      break;
    }
    if (poll(p, 2, ms) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : p)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::unique_ptr<Daemon> Daemon::Start(const std::vector<std::string>& extra_args,
                                      const std::string& state_dir) {
  auto d = std::unique_ptr<Daemon>(new Daemon());
  d->own_state_dir_ = state_dir.empty();
  d->state_dir_ = state_dir.empty() ? TempPath("forklet-test-state") : state_dir;
  fs::create_directories(d->state_dir_);
  RememberStateDir(d->state_dir_);
  // --config "": never the host's /etc/forklet/forkletd.json, should forklet be installed here.
  // --snapshots off: a function whose import is slow only because the machine is busy would be
  // checkpointed (auto) and later starts come back as restores; the snapshot tests ask for
  // snapshots per function (FORKLET_SNAPSHOT), which wins over this default.
  std::vector<std::string> argv = {FORKLETD_PATH, "--config", "", "--listen", "127.0.0.1:0",
                                   "--state-dir", d->state_dir_, "--cgroup-pool", "2",
                                   "--snapshots", "off"};
  // Tests choose their access control explicitly: unsigned (every client the operator) unless
  // they give access keys.
  if (std::find(extra_args.begin(), extra_args.end(), "--credentials") == extra_args.end())
    argv.push_back("--insecure-no-auth");
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int rc = posix_spawn(&d->pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(err_pipe[1]);
  if (rc != 0) throw std::runtime_error(std::string("spawn forkletd: ") + strerror(rc));
  d->stderr_fd_ = err_pipe[0];
  // Wait for "ready on http://127.0.0.1:PORT" (https:// with TLS).
  std::regex ready(R"(ready on https?://127\.0\.0\.1:(\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{d->stderr_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = read(d->stderr_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    d->log_.append(buf, static_cast<size_t>(n));
    std::smatch m;
    if (std::regex_search(d->log_, m, ready)) {
      d->port_ = std::stoi(m[1]);
      // Keep draining its stderr so it never blocks on a full pipe.
      fcntl(d->stderr_fd_, F_SETFL, O_NONBLOCK);
      return d;
    }
  }
  throw std::runtime_error("forkletd did not become ready; its output:\n" + d->log_);
}

const std::string& Daemon::ReadLog() {
  char buf[65536];
  ssize_t n;
  while (stderr_fd_ >= 0 && (n = read(stderr_fd_, buf, sizeof(buf))) > 0)
    log_.append(buf, static_cast<size_t>(n));
  return log_;
}

bool Daemon::Alive() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

void Daemon::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 1500; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      usleep(10000);
    }
    if (pid_ > 0) Kill9();
  }
  if (stderr_fd_ >= 0) close(stderr_fd_);
  if (own_state_dir_) {
    std::error_code ec;
    fs::remove_all(state_dir_, ec);
  }
}

CmdResult Daemon::Aws(const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> argv = {"/usr/bin/aws", "lambda"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--endpoint-url", endpoint(), "--region", "us-east-1", "--no-cli-pager"});
  return Run(argv,
             {{"AWS_ACCESS_KEY_ID", "forklet"},
              {"AWS_SECRET_ACCESS_KEY", "forklet"},
              {"AWS_MAX_ATTEMPTS", "1"},
              {"AWS_RETRY_MODE", "standard"},
              {"AWS_CONFIG_FILE", "/dev/null"},
              {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
              {"AWS_EC2_METADATA_DISABLED", "true"}},
             timeout_s);
}

CmdResult Daemon::Cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {FORKLET_CLI_PATH, "--endpoint", unix_endpoint()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

SmallDisk::SmallDisk(const std::string& name, const std::string& size)
    : path_("/tmp/forklet-test-state-" + name + "-" + std::to_string(getpid())) {
  fs::create_directories(path_);
  mounted_ = mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) == 0;
}

SmallDisk::~SmallDisk() {
  if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ZipFunction(const std::string& name) {
  return ZipDirectory(std::string(TEST_FUNCTIONS_DIR) + "/" + name);
}

std::string ZipDirectory(const std::string& dir) {
  std::string zip = TempPath("forklet-fn") + ".zip";
  auto r = Run({"/usr/bin/python3", "-c",
                "import sys, zipfile, pathlib\n"
                "src = pathlib.Path(sys.argv[1])\n"
                "with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n"
                "    for p in sorted(src.rglob('*')):\n"
                "        if p.is_file() and '__pycache__' not in p.parts:\n"
                "            z.write(p, p.relative_to(src))\n",
                dir, zip});
  if (r.exit_code != 0) throw std::runtime_error("zip " + dir + ": " + r.err);
  return zip;
}

std::string ZipWithEntry(const std::string& entry_name, const std::string& content) {
  std::string zip = TempPath("forklet-evil") + ".zip";
  auto r = Run({"/usr/bin/python3", "-c",
                "import sys, zipfile\n"
                "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
                "    z.writestr('app.py', 'def handler(e, c):\\n    return 1\\n')\n"
                "    z.writestr(sys.argv[2], sys.argv[3])\n",
                zip, entry_name, content});
  if (r.exit_code != 0) throw std::runtime_error("zip: " + r.err);
  return zip;
}

CmdResult Deploy(Daemon& d, const std::string& fn, const std::string& name,
                 const std::vector<std::string>& extra) {
  return DeployDir(d, fn, std::string(TEST_FUNCTIONS_DIR) + "/" + name, extra);
}

CmdResult DeployDir(Daemon& d, const std::string& fn, const std::string& dir,
                    const std::vector<std::string>& extra) {
  return DeployDir(d, fn, dir, "python3.11", "app.handler", extra);
}

CmdResult DeployDir(Daemon& d, const std::string& fn, const std::string& dir,
                    const std::string& runtime, const std::string& handler,
                    const std::vector<std::string>& extra) {
  std::string zip = ZipDirectory(dir);
  std::vector<std::string> args = {"create-function", "--function-name", fn, "--runtime",
                                   runtime, "--handler", handler, "--zip-file",
                                   "fileb://" + zip, "--role", "arn:aws:iam::000000000000:role/x"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = d.Aws(args);
  unlink(zip.c_str());
  return r;
}

CmdResult Invoke(Daemon& d, const std::string& fn, const std::string& payload, std::string* body,
                 const std::vector<std::string>& extra) {
  std::string out = TempPath("forklet-out") + ".json";
  std::vector<std::string> args = {"invoke", "--function-name", fn, "--cli-binary-format",
                                   "raw-in-base64-out"};
  if (!payload.empty()) args.insert(args.end(), {"--payload", payload});
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(out);
  auto r = d.Aws(args);
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  if (body) *body = ss.str();
  unlink(out.c_str());
  return r;
}

nlohmann::json InvokeWithLog(Daemon& d, const std::string& fn, const std::string& payload,
                             std::string* body, std::string* log) {
  auto i = Invoke(d, fn, payload, body, {"--log-type", "Tail"});
  if (i.exit_code != 0) ADD_FAILURE() << "invoke " << fn << ": " << i.err;
  auto out = nlohmann::json::parse(i.out, nullptr, false);
  if (log && out.is_object() && out.contains("LogResult")) *log = Base64Decode(out["LogResult"]);
  return out;
}

std::string StartKindIn(const std::string& log) {
  auto pos = log.find("Start Kind: ");
  if (pos == std::string::npos) return "none";
  return log.substr(pos + 12, log.find('\t', pos) - pos - 12);
}

std::string RequestIdIn(const std::string& log) {
  auto pos = log.find("START RequestId: ");
  return pos == std::string::npos ? "" : log.substr(pos + 17, 36);
}

std::map<std::string, std::string> StatusFields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

std::string Base64Decode(const std::string& s) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : s) {
    auto pos = chars.find(c);
    if (pos == std::string::npos) continue;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

namespace {
// What this test process started, so that another forklet on the machine (an installed service,
// a second checkout's tests) is never mistaken for a leak of ours: the cgroup roots of the state
// dirs our daemons used (forkletd names them forklet.<hash of the canonical state dir>) and the
// processes started from our build tree.
std::mutex g_started_mu;
std::set<std::string> g_started_cgroup_roots;
std::set<std::string> g_started_state_dirs;

std::string Cmdline(const fs::path& proc_dir) {
  std::ifstream f(proc_dir / "cmdline");
  std::string cmd((std::istreambuf_iterator<char>(f)), {});
  for (char& c : cmd)
    if (c == 0) c = ' ';
  return cmd;
}

std::string ParentPid(const fs::path& proc_dir) {
  std::ifstream f(proc_dir / "stat");
  std::string stat((std::istreambuf_iterator<char>(f)), {});
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream rest(stat.substr(close_paren + 2));
  std::string state, ppid;
  rest >> state >> ppid;
  return ppid;
}
}  // namespace

void RememberStateDir(const std::string& state_dir) {
  std::error_code ec;
  std::string canonical = fs::canonical(state_dir, ec).string();
  if (ec) canonical = state_dir;
  std::lock_guard lock(g_started_mu);
  g_started_state_dirs.insert(state_dir);
  g_started_cgroup_roots.insert("forklet." +
                                std::to_string(std::hash<std::string>{}(canonical) % 0xffffffffu));
}

std::set<std::string> StartedCgroupRoots() {
  std::lock_guard lock(g_started_mu);
  return g_started_cgroup_roots;
}

std::vector<std::string> Leftovers() {
  std::vector<std::string> found;
  std::error_code ec;
  std::set<std::string> roots, state_dirs;
  {
    std::lock_guard lock(g_started_mu);
    roots = g_started_cgroup_roots;
    state_dirs = g_started_state_dirs;
  }
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() > 6) it.disable_recursion_pending();
    if (it->is_directory(ec) && roots.count(it->path().filename().string()))
      found.push_back("cgroup " + it->path().string());
  }
  // Our daemons (by their state dir) and their children (zygotes, instances). Orphans of a killed
  // daemon sit in its cgroups, which the loop above reports.
  std::set<std::string> daemons;
  std::vector<std::pair<std::string, fs::path>> procs;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    procs.emplace_back(pid, e.path());
    std::string cmd = Cmdline(e.path());
    if (cmd.find("bin/forkletd ") == std::string::npos) continue;
    for (const auto& dir : state_dirs)
      if (cmd.find("--state-dir " + dir + " ") != std::string::npos) {
        daemons.insert(pid);
        found.push_back("process " + pid + ": " + cmd);
      }
  }
  for (const auto& [pid, dir] : procs)
    if (daemons.count(ParentPid(dir))) found.push_back("process " + pid + ": " + Cmdline(dir));
  // Their network (sandbox/net/egress_network.h): interfaces fk<id>..., nftables tables forklet_<id>,
  // the id being the low 24 bits of the cgroup tag in hex.
  std::string tables;
  for (const auto& root : roots) {
    char id[8];
    snprintf(id, sizeof(id), "%06lx", std::strtoul(root.substr(root.find('.') + 1).c_str(), nullptr, 10) & 0xffffff);
    for (const auto& e : fs::directory_iterator("/sys/class/net", ec))
      if (e.path().filename().string().rfind(std::string("fk") + id, 0) == 0)
        found.push_back("interface " + e.path().filename().string());
    if (tables.empty()) tables = Run({"/usr/sbin/nft", "list", "tables"}, {}, 30).out + " ";
    if (tables.find(std::string("forklet_") + id + "\n") != std::string::npos)
      found.push_back(std::string("nftables table forklet_") + id);
  }
  // Loop devices of their instances' /tmp areas (<state>/tmp-areas/area-*, deleted once attached).
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::ifstream f(e.path() / "loop/backing_file");
    std::string backing;
    if (!std::getline(f, backing)) continue;
    for (const auto& dir : state_dirs)
      if (backing.rfind(dir + "/tmp-areas/", 0) == 0)
        found.push_back("loop device /dev/" + e.path().filename().string() + ": " + backing);
  }
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  // Our own mounts: their paths end in this process's pid ("...-diskfull-PID", "...-PID-N"), not
  // those of another test process on the machine.
  const std::string pid = std::to_string(getpid());
  while (std::getline(mounts, line))
    if (line.find("forklet-test-state") != std::string::npos &&
        (line.find("-" + pid + " ") != std::string::npos || line.find("-" + pid + "-") != std::string::npos))
      found.push_back("mount " + line);
  // Temp files of this process (ZipDirectory, ZipWithEntry, Invoke's output): a test removes its own.
  for (const auto& e : fs::directory_iterator("/tmp", ec)) {
    std::string name = e.path().filename().string();
    for (const char* prefix : {"forklet-fn-", "forklet-evil-", "forklet-out-"})
      if (name.rfind(prefix + pid + "-", 0) == 0) found.push_back("file " + e.path().string());
  }
  return found;
}

nlohmann::json Health(Daemon& d) {
  auto r = api::HttpCall(d.endpoint(), "GET", "/forklet/v1/health");
  return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
}

}  // namespace forklet::testing
