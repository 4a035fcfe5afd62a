// forkletd: the node daemon. Parses flags, opens the state, starts the zygotes and the API.
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "runtime/api/http_server.h"
#include "runtime/api/lambda_api.h"
#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/registry/registry.h"

namespace fs = std::filesystem;
using namespace forklet;

int g_signal_pipe = -1;  // written by the signal handler, read by main

namespace {

const char* kUsage = R"(usage: forkletd [options]
  --listen HOST:PORT         loopback TCP address of the API (default 127.0.0.1:9000)
  --state-dir DIR            functions, code and sockets (default /var/lib/forklet)
  --socket PATH              Unix socket of the API (default STATE_DIR/forkletd.sock)
  --keep-alive SECONDS       how long an idle instance is kept (default 600)
  --max-concurrency N        instances per function unless reserved (default 10)
  --memory-budget-mb N       memory for instances; idle ones are evicted past it (default: 75% of RAM)
  --cgroup-pool N            cgroups kept ready (default 8)
  --tmp-size-mb N            size of each instance's /tmp (default 512)
  --max-code-mb N            largest deployment zip accepted (default 50, as Lambda)
  --runners-dir DIR          lang-runners as installed (default: next to this binary)
  --zygote-lib PATH          libforklet_zygote.so (default: next to this binary)
  --no-warmup                do not start zygotes before the first request
)";

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "forkletd: %s\n", message.c_str());
  exit(1);
}

uint64_t ParseNumber(const std::string& flag, const std::string& v, uint64_t min, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || n < min || n > max)
    Die(flag + ": expected a number from " + std::to_string(min) + " to " + std::to_string(max) +
        ", got '" + v + "'");
  return n;
}

uint64_t DefaultMemoryBudgetMb() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / (1 << 20) * 3 / 4;
}

// Finds a file installed next to the binary: build tree (bin/, lib/, share/) or /usr layout.
std::string NextToBinary(const std::string& relative) {
  fs::path exe = fs::read_symlink("/proc/self/exe").parent_path();
  for (fs::path base : {exe.parent_path(), exe.parent_path().parent_path()}) {
    if (fs::exists(base / relative)) return (base / relative).string();
  }
  return (exe.parent_path() / relative).string();
}

void OnSignal(int) {
  // Only async-signal-safe work here: wake the main thread.
  static const char c = 1;
  (void)!write(g_signal_pipe, &c, 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:9000", state_dir = "/var/lib/forklet", socket_path;
  std::string runners_dir = NextToBinary("share/forklet/lang-runners");
  std::string zygote_lib = NextToBinary("lib/libforklet_zygote.so");
  core::SchedulerOptions sched;
  sched.memory_budget_mb = DefaultMemoryBudgetMb();
  uint64_t pool = 8, tmp_mb = 512;
  registry::ArchiveLimits archive_limits;
  bool warmup = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value\n" + kUsage);
      return argv[++i];
    };
    if (a == "--listen") listen = next();
    else if (a == "--state-dir") state_dir = next();
    else if (a == "--socket") socket_path = next();
    else if (a == "--keep-alive") sched.keep_alive = std::chrono::seconds(ParseNumber(a, next(), 0, 86400 * 7));
    else if (a == "--max-concurrency") sched.max_instances_per_function = static_cast<uint32_t>(ParseNumber(a, next(), 1, 10000));
    else if (a == "--memory-budget-mb") sched.memory_budget_mb = ParseNumber(a, next(), 128, 1ull << 30);
    else if (a == "--cgroup-pool") pool = ParseNumber(a, next(), 0, 1024);
    else if (a == "--tmp-size-mb") tmp_mb = ParseNumber(a, next(), 1, 10240);
    else if (a == "--max-code-mb") archive_limits.max_zip_bytes = ParseNumber(a, next(), 1, 1024) << 20;
    else if (a == "--runners-dir") runners_dir = next();
    else if (a == "--zygote-lib") zygote_lib = next();
    else if (a == "--no-warmup") warmup = false;
    else if (a == "--help" || a == "-h") { fputs(kUsage, stdout); return 0; }
    else Die("unknown option " + a + "\n" + kUsage);
  }
  if (geteuid() != 0) Die("must run as root (it creates namespaces, mounts and cgroups)");
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) Die("--state-dir " + state_dir + ": " + ec.message());
  state_dir = fs::canonical(state_dir).string();
  chmod(state_dir.c_str(), 0711);
  if (socket_path.empty()) socket_path = state_dir + "/forkletd.sock";
  if (!fs::exists(zygote_lib)) Die("zygote library not found: " + zygote_lib + " (use --zygote-lib)");
  if (!fs::exists(runners_dir + "/python/forklet_zygote.py"))
    Die("python runner not found in " + runners_dir + " (use --runners-dir)");

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) Die("pipe failed");
  g_signal_pipe = pipefd[1];
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  auto registry = registry::Registry::Open(state_dir, archive_limits);
  if (!registry) Die("state dir: " + registry.error().ToString());

  core::LauncherOptions lo;
  lo.state_dir = state_dir;
  lo.runners_dir = runners_dir;
  lo.zygote_library = zygote_lib;
  lo.cgroup_tag = std::to_string(std::hash<std::string>{}(state_dir) % 0xffffffffu);
  lo.cgroup_pool_size = pool;
  lo.tmp_size_bytes = tmp_mb << 20;
  auto launcher = core::Launcher::Create(lo);
  if (!launcher) Die(launcher.error().ToString());
  if (warmup) {
    if (auto s = (*launcher)->WarmUp(); !s) Die("python zygote: " + s.error().ToString());
  }
  auto scheduler = std::make_unique<core::Scheduler>(sched, launcher->get());
  api::LambdaApi lambda(registry->get(), scheduler.get(), launcher->get());

  api::HttpServerOptions ho;
  ho.listen = listen;
  ho.unix_socket = socket_path;
  auto server = api::HttpServer::Start(ho, [&](const api::HttpRequest& r) { return lambda.Handle(r); });
  if (!server) Die(server.error().ToString());
  fprintf(stderr, "forkletd: ready on http://127.0.0.1:%d and unix:%s (state %s, cgroups %s %s, %zu functions)\n",
          (*server)->tcp_port(), socket_path.c_str(), state_dir.c_str(),
          (*launcher)->cgroups().version(), (*launcher)->cgroups().root_description().c_str(),
          (*registry)->List().size());

  char c;
  while (read(pipefd[0], &c, 1) < 0 && errno == EINTR) {
  }
  fprintf(stderr, "forkletd: stopping\n");
  (*server)->Stop();
  scheduler.reset();
  launcher->reset();
  return 0;
}
