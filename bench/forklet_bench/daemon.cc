// Starting and stopping the daemon under test; deploying and dropping through its API.
#include "bench/forklet_bench/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/forklet_bench/options.h"
#include "runtime/registry/code_archive.h"
#include "tools/zip_dir.h"

extern char** environ;

namespace forklet::bench {
namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<EmptyFunction>& EmptyFunctions() {
  static const std::vector<EmptyFunction> kAll = [] {
    const std::string handler = "def handler(event, context):\n    return None\n";
    EmptyFunction py{"python3", "python3.11", "app.handler", "app.py", handler, {}, {}, {}, false};
    py.baseline_argv = {"/usr/bin/python3", "-c", handler + "handler({}, None)\n"};
    py.baseline_name = "python3 -c";
    const std::string js_handler = "exports.handler = async () => null;\n";
    EmptyFunction js{"nodejs", "nodejs20.x", "index.handler", "index.js", js_handler, {}, {}, {}, false};
    // A clean environment, as forklet's Node gets: a host's NODE_EXTRA_CA_CERTS alone adds 35 ms.
    js.baseline_argv = {"/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "/usr/bin/node", "-e",
                        js_handler + "exports.handler({}, {});\n"};
    js.baseline_name = "node -e";
    js.pre_booted = true;
    // The compiled runtimes' empty functions (bench/functions/), as the build made them.
    const std::string built = NextToBinary("share/forklet/bench/functions");
    EmptyFunction native{"native", "native", "libempty.handler", {}, {}, built + "/native-empty", {}, {}, false};
    EmptyFunction provided{"provided", "provided.al2023", "empty.handler", {}, {}, built + "/provided-empty", {}, {},
                           false};
    return std::vector<EmptyFunction>{py, js, native, provided};
  }();
  return kAll;
}

Result<std::unique_ptr<DaemonUnderTest>> DaemonUnderTest::Start(
    const std::string& forkletd, const std::vector<std::string>& extra_args) {
  char tmpl[] = "/tmp/forklet-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return SysError("mkdtemp");
  std::string state = tmpl;
  std::string log = state + "/forkletd.log";
  std::vector<std::string> args = {forkletd, "--listen", "127.0.0.1:0", "--state-dir", state + "/state"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the bench blocks SIGINT/SIGTERM for its waiter
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0].c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    fs::remove_all(state);
    return SysError("spawn " + forkletd, rc);
  }
  std::unique_ptr<DaemonUnderTest> d;
  for (int i = 0; i < 300; ++i) {  // 30 s: the first start boots the zygote
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    auto at = text.find("ready on http://");
    if (at != std::string::npos) {
      std::string endpoint = text.substr(at + 9, text.find(' ', at + 9) - (at + 9));
      d.reset(new DaemonUnderTest(endpoint));
      break;
    }
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      fs::remove_all(state);
      return MakeError("forkletd exited during start-up", text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!d) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    fs::remove_all(state);
    return MakeError("forkletd", "not ready after 30 s (log: " + log + ")");
  }
  d->pid_ = pid;
  d->state_dir_ = state;
  return d;
}

std::unique_ptr<DaemonUnderTest> DaemonUnderTest::Attach(const std::string& endpoint) {
  return std::unique_ptr<DaemonUnderTest>(new DaemonUnderTest(endpoint));
}

void DaemonUnderTest::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 300 && !gone; ++i) {  // it tears down instances, zygotes and cgroups
      gone = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = 0;
  }
  if (!state_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(state_dir_, ec);
    state_dir_.clear();
  }
}

DaemonUnderTest::~DaemonUnderTest() { Stop(); }

Result<HttpReply> DaemonUnderTest::Admin(const std::string& method, const std::string& target,
                                         const std::string& body) {
  auto r = api_.Call(method, target, body, body.empty() ? "" : "Content-Type: application/json\r\n");
  if (!r) return r.error();
  if (r->status >= 300 && r->status != 404)
    return MakeError(method + " " + target, "HTTP " + std::to_string(r->status) + ": " + r->body);
  return r;
}

Status DaemonUnderTest::Deploy(const std::string& name, const EmptyFunction& fn, int memory_mb) {
  Result<std::string> zip = MakeError("zip", "no code");
  if (!fn.built_dir.empty()) {
    zip = tools::ZipDirectory(fn.built_dir);
  } else {
    char tmpl[] = "/tmp/forklet-bench-code-XXXXXX";
    if (!mkdtemp(tmpl)) return SysError("mkdtemp");
    {
      std::ofstream f(std::string(tmpl) + "/" + fn.file);
      f << fn.code;
    }
    zip = tools::ZipDirectory(tmpl);
    std::error_code ec;
    fs::remove_all(tmpl, ec);
  }
  if (!zip) return zip.error();
  if (auto s = Delete(name); !s) return s;  // a running daemon may hold an older one
  json req{{"FunctionName", name},
           {"Runtime", fn.lambda_runtime},
           {"Handler", fn.handler},
           {"Role", "arn:aws:iam::000000000000:role/forklet-bench"},
           {"MemorySize", memory_mb},
           {"Timeout", 3},
           {"Environment", {{"Variables", {{"FORKLET_SNAPSHOT", "off"}}}}},
           {"Code", {{"ZipFile", registry::Base64Encode(*zip)}}}};
  auto r = Admin("POST", "/2015-03-31/functions", req.dump());
  if (!r) return r.error();
  if (r->status != 201) return MakeError("deploy " + name, "HTTP " + std::to_string(r->status) + ": " + r->body);
  return {};
}

Status DaemonUnderTest::Delete(const std::string& name) {
  auto r = Admin("DELETE", "/2015-03-31/functions/" + name);
  if (!r) return r.error();
  return {};
}

Status DaemonUnderTest::DropIdleInstances(const std::string& function) {
  auto r = Admin("POST", "/forklet/v1/admin/instances/drop" +
                             (function.empty() ? std::string() : "?function=" + function));
  if (!r) return r.error();
  return {};
}

Status DaemonUnderTest::DropZygote(const std::string& family) {
  auto r = Admin("POST", "/forklet/v1/admin/zygotes/" + family + "/drop");
  if (!r) return r.error();
  return {};
}

Status DaemonUnderTest::Rebind(const std::string& function, int n) {
  json req{{"Environment",
            {{"Variables", {{"FORKLET_SNAPSHOT", "off"}, {"FORKLET_BENCH_REVISION", std::to_string(n)}}}}}};
  auto r = Admin("PUT", "/2015-03-31/functions/" + function + "/configuration", req.dump());
  if (!r) return r.error();
  if (r->status != 200) return MakeError("update " + function, "HTTP " + std::to_string(r->status) + ": " + r->body);
  return {};
}

Status DaemonUnderTest::WaitForSpareZygote(const std::string& family) {
  for (int i = 0; i < 2000; ++i) {
    auto h = GetHealth();
    if (!h) return h.error();
    for (const auto& z : h->zygotes) {
      if (z.runtime != family || !z.function.empty()) continue;
      // Just booted, a Python spare still preloads modules in its idle slices: a real first
      // start finds it done (spares boot long before), so give it that time.
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return MakeError("spare zygote of " + family, "none booted within 10 s");
}

Result<Health> DaemonUnderTest::GetHealth() {
  auto r = Admin("GET", "/forklet/v1/health");
  if (!r) return r.error();
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return MakeError("health", "not JSON: " + r->body);
  Health h;
  for (const auto& z : j.value("zygotes", json::array()))
    h.zygotes.push_back({z.value("runtime", ""), z.value("function", ""), z.value("pid", 0)});
  const json inst = j.value("instances", json::object());
  h.idle = inst.value("idle", 0u);
  h.busy = inst.value("busy", 0u);
  for (const auto& p : inst.value("idle_pids", json::array())) h.idle_instance_pids.push_back(p.get<pid_t>());
  const json stem_cells = j.value("stem_cells", json::object());
  for (const auto& [family, s] : stem_cells.items()) {
    StemCellHealth& out = h.stem_cells[family];
    out.ready = s.value("ready", 0u);
    out.booting = s.value("booting", 0u);
    out.target = s.value("target", 0u);
    for (const auto& p : s.value("pids", json::array())) out.pids.push_back(p.get<pid_t>());
  }
  const json pre = j.value("preforked", json::object());
  h.preforked_ready = pre.value("ready", 0u);
  h.preforked_forking = pre.value("forking", 0u);
  h.preforked_functions = pre.value("functions", 0u);
  return h;
}

Result<std::string> DaemonUnderTest::WarmPathJson() {
  auto r = Admin("GET", "/forklet/v1/stats");
  if (!r) return r.error();
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return MakeError("stats", "not JSON: " + r->body.substr(0, 200));
  return j.value("warm_path", json::object()).dump();
}

Status DaemonUnderTest::WaitForPreforked() {
  for (int i = 0; i < 200; ++i) {
    auto h = GetHealth();
    if (!h) return h.error();
    if (h->preforked_ready > 0 && h->preforked_ready >= h->preforked_functions && h->preforked_forking == 0)
      return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

Status DaemonUnderTest::WaitForStemCells(const std::string& family, bool full) {
  for (int i = 0; i < 2000; ++i) {
    auto h = GetHealth();
    if (!h) return h.error();
    auto it = h->stem_cells.find(family);
    if (it == h->stem_cells.end()) return {};
    if (full ? it->second.ready >= it->second.target : it->second.booting == 0) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return MakeError("stem cells of " + family, full ? "not booted within 10 s" : "still booting after 10 s");
}

}  // namespace forklet::bench
