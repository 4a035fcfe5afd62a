#include "runtime/daemon/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>

namespace forklet::daemon {
namespace fs = std::filesystem;
namespace {

const char* kUsage = R"(usage: forkletd [options]
  --listen HOST:PORT         loopback TCP address of the API (default 127.0.0.1:9000; port 0: any)
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

bool ParseNumber(const std::string& flag, const std::string& v, uint64_t min, uint64_t max,
                 uint64_t* out, std::string* message) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || n < min || n > max || v[0] == '-') {
    *message = flag + ": expected a number from " + std::to_string(min) + " to " +
               std::to_string(max) + ", got '" + v + "'";
    return false;
  }
  *out = n;
  return true;
}

uint64_t DefaultMemoryBudgetMb() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / (1 << 20) * 3 / 4;
}

// A file installed next to the binary: build tree (bin/, lib/, share/) or the /usr layout.
std::string NextToBinary(const std::string& relative) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path base : {exe.parent_path(), exe.parent_path().parent_path()}) {
    if (fs::exists(base / relative, ec)) return (base / relative).string();
  }
  return (exe.parent_path() / relative).string();
}

}  // namespace

const char* Usage() { return kUsage; }

bool ParseOptions(int argc, char** argv, Options* o, std::string* message, bool* help) {
  *help = false;
  o->scheduler.memory_budget_mb = DefaultMemoryBudgetMb();
  o->launcher.runners_dir = NextToBinary("share/forklet/lang-runners");
  o->launcher.zygote_library = NextToBinary("lib/libforklet_zygote.so");
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    auto value = [&]() {
      if (i + 1 >= argc) {
        *message = a + " needs a value";
        return false;
      }
      v = argv[++i];
      return true;
    };
    uint64_t n = 0;
    auto number = [&](uint64_t min, uint64_t max) {
      return value() && ParseNumber(a, v, min, max, &n, message);
    };
    if (a == "--listen") {
      if (!value()) return false;
      o->listen = v;
    } else if (a == "--state-dir") {
      if (!value()) return false;
      o->state_dir = v;
    } else if (a == "--socket") {
      if (!value()) return false;
      o->socket_path = v;
    } else if (a == "--keep-alive") {
      if (!number(0, 7 * 86400)) return false;
      o->scheduler.keep_alive = std::chrono::seconds(n);
    } else if (a == "--max-concurrency") {
      if (!number(1, 10000)) return false;
      o->scheduler.max_instances_per_function = static_cast<uint32_t>(n);
    } else if (a == "--memory-budget-mb") {
      if (!number(128, 1ull << 30)) return false;
      o->scheduler.memory_budget_mb = n;
    } else if (a == "--cgroup-pool") {
      if (!number(0, 1024)) return false;
      o->launcher.cgroup_pool_size = n;
    } else if (a == "--tmp-size-mb") {
      if (!number(1, 10240)) return false;
      o->launcher.tmp_size_bytes = n << 20;
    } else if (a == "--max-code-mb") {
      if (!number(1, 1024)) return false;
      o->archive.max_zip_bytes = n << 20;
    } else if (a == "--runners-dir") {
      if (!value()) return false;
      o->launcher.runners_dir = v;
    } else if (a == "--zygote-lib") {
      if (!value()) return false;
      o->launcher.zygote_library = v;
    } else if (a == "--no-warmup") {
      o->warmup = false;
    } else if (a == "--help" || a == "-h") {
      *help = true;
      *message = kUsage;
      return false;
    } else {
      *message = "unknown option " + a;
      return false;
    }
  }
  return true;
}

void FinishOptions(Options* o) {
  if (o->socket_path.empty()) o->socket_path = o->state_dir + "/forkletd.sock";
  o->launcher.state_dir = o->state_dir;
  // One daemon per state dir; its cgroups are named after it so a restart finds its leftovers.
  o->launcher.cgroup_tag = std::to_string(std::hash<std::string>{}(o->state_dir) % 0xffffffffu);
}

}  // namespace forklet::daemon
