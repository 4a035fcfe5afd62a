// forkletd's configuration: built-in defaults, then the configuration file, then command-line
#include "runtime/daemon/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <vector>

#include "runtime/daemon/config_file.h"

namespace forklet::daemon {
namespace fs = std::filesystem;
namespace {

const char* kUsage = R"(usage: forkletd [options]
  --config FILE              JSON settings: these options without their dashes (default
                             /etc/forklet/forkletd.json if present; "" for none); flags win
  --listen HOST:PORT         loopback TCP address of the API (default 127.0.0.1:9000; port 0: any)
  --state-dir DIR            functions, code and sockets (default /var/lib/forklet)
  --socket PATH              Unix socket of the API (default STATE_DIR/forkletd.sock)
  --credentials FILE         access keys (JSON, see README) that sign requests to the TCP API with
                             AWS Signature V4; every TCP request must be signed by one of them
                             (re-read on SIGHUP); each key's account is a tenant (README). Without
                             it the TCP API takes unsigned requests, on loopback only
  --regions LIST             regions a signature may be scoped to, comma-separated (default: any)
  --insecure-no-auth         take unsigned TCP requests, every caller the operator of every account,
                             with a warning at start; without it (and without --credentials) only a
                             loopback --listen is allowed
  --tls-cert FILE            the TCP API speaks HTTPS (TLS 1.2+) with this PEM certificate (chain)
  --tls-key FILE             and this PEM private key; both re-read on SIGHUP (a renewed
                             certificate serves new connections; a bad file keeps the old one)
  --keep-alive SECONDS       how long an idle instance is kept (default 600)
  --max-concurrency N        instances per function unless reserved (default 10)
  --memory-budget-mb N       memory for instances; idle ones are evicted past it (default: 75% of RAM)
  --cgroup-pool N            cgroups kept ready (default 8)
  --tmp-size-mb N            size of a stem cell's /tmp until a function takes it, and of the
                             fallback tmpfs (default 512); a function's /tmp is its
                             EphemeralStorage.Size (512-10240 MB, default 512)
  --tmp-pool N               disk-backed /tmp areas kept ready per EphemeralStorage size in use
                             (default 4); 0: /tmp is a tmpfs counting against the function's memory
  --netns-reuse N            network namespaces of ended instances kept for the next new
                             instance of the same function version, checked empty (default 8
                             per function, 64 in all); 0: each instance's namespace goes with it
  --subtree-pids N           tasks in all instances and zygotes together (default: from the
                             host's pid_max and the memory budget, leaving the host a quarter)
  --instances-cpu-weight N   CPU weight of all instances and zygotes together against the
                             daemon's own threads, cpu.shares scale: 1024 weighs as one busy
                             thread (default 1024; 4096 tightens the warm tail under many
                             connections, slows zygote starts; each instance stays capped by
                             its memory size)
  --answer-spin-us N         while one invocation is in flight, how long the daemon keeps
                             asking for its result before sleeping until it comes (default 0:
                             it sleeps at once; 50 lowers one connection's warm p50 for fast
                             handlers, costs CPU otherwise); never with one CPU or two in flight
  --max-code-mb N            largest deployment zip accepted (default 50, as Lambda)
  --runners-dir DIR          lang-runners as installed (default: next to this binary)
  --zygote-lib PATH          libforklet_zygote.so (default: next to this binary)
  --zygote-exe PATH          forklet-zygote, the native/provided/nodejs zygote (default: next
                             to this binary)
  --no-warmup                do not start zygotes before the first request
  --snapshots off|on|auto    restore new instances from CRIU snapshots: the default for functions
                             without FORKLET_SNAPSHOT (default auto; needs criu, see docs/snapshots.md)
  --function-network egress|none  instances' network for functions without FORKLET_NETWORK:
                             egress (default, as Lambda) gives each an address on a bridge of
                             forklet's with NAT out through the host's default route, and nothing
                             to the host, other instances or 169.254.0.0/16; none: loopback only
                             (docs/network.md)
  --function-network-pool CIDR  private range the egress bridges take a /22 each from (default
                             10.231.0.0/16; the first /22 that collides with nothing on the host)
  --criu PATH                criu executable (default: tools/setup-criu.sh's, else $PATH)
  --snapshot-mb N            disk for all snapshots together, least recently used go (default 2048)
  --node-stem-cells N        pre-booted Node.js instances kept ready once a Node function is
                             deployed (default 1; 0: every new Node instance starts cold)
  --preforked N              instances forked ahead of demand per recently started function of
                             python3, native and provided, from its own zygote: a new instance
                             then only runs its init (default 1; 0: every new instance forks)
  --spare-zygotes N           freshly exec'd zygotes kept ready per runtime (python3, native,
                             provided) for functions' first starts; each function gets its own
                             zygote (default 1; 0: every function's first start is cold)
  --drain-grace SECONDS      on SIGTERM, how long in-flight invocations may finish (default 30)
  --billing-granularity-ms N billed duration rounds up to N ms (default 100, Lambda 2017; 1 works)
  --price-per-request USD    per invocation (default 0.0000002: $0.20 per million)
  --price-per-gb-second USD  per GB-second of memory size x billed duration (default 0.0000166667)
  --bill-init                bill the init of new instances too (default: not, as Lambda 2017)
  --no-ledger                keep no billing ledger (STATE_DIR/ledger.db); for measuring its cost
  --http-header-timeout SECONDS  a request's header must arrive within this (default 10; 408 after)
  --http-body-timeout SECONDS    a request's body, and the reading of a response (default 120)
  --http-idle-timeout SECONDS    a keep-alive connection with no request is closed (default 60)
  --http-max-connections N       open API connections; more get 503 and are closed (default 512)
  --max-concurrent-uploads N     request bodies of 1 MB or more (code uploads) read and handled
                                 at once; more get 429 with Retry-After (default 4); code
                                 uploads among them are spooled to STATE_DIR/uploads
  --event-workers N          Event invocations run at once, all functions together (default 16)
  --event-retry-base-ms N    wait before the first retry of a failed Event invocation; the second
                             waits twice as long (default 60000, as Lambda)
  --event-sync               fdatasync every accepted event before its 202 (group commit): safe
                             from a power cut, not only from the daemon's death (default: off)
  --event-queue-max N        events accepted and not finished, all functions; past it new
                             events get 429 TooManyRequestsException (default 1000000; 0: none)
  --event-queue-max-per-function N  the same per function (default 100000; 0: none)
  --event-queue-max-mb N     payload MB accepted and not finished, all functions (default 512)
  --event-queue-max-mb-per-function N  the same per function (default 128)
  --event-min-free-disk-mb N new events get 429 while the state dir's file system has less free
                             than this (default 64; 0: only a failed write refuses, with 503)
SIGHUP re-reads the configuration: keep-alive, max-concurrency, memory-budget-mb and the prices
change live.
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

#ifndef FORKLET_INSTALL_LIBDIR
#define FORKLET_INSTALL_LIBDIR "lib/forklet"
#endif
#ifndef FORKLET_INSTALL_LIBEXECDIR
#define FORKLET_INSTALL_LIBEXECDIR "libexec/forklet"
#endif

// A file installed next to the binary: build tree (bin/, lib/, share/) or the installed layout
// (PREFIX/bin, PREFIX/<libdir>/forklet, PREFIX/share/forklet); the first candidate that exists.
std::string NextToBinary(std::initializer_list<std::string> candidates) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& relative : candidates)
    for (fs::path base : {exe.parent_path(), exe.parent_path().parent_path()}) {
      if (fs::exists(base / relative, ec)) return (base / relative).string();
    }
  return (exe.parent_path() / *candidates.begin()).string();
}

// The configuration file's path: --config's value, else the default.
std::string ConfigPath(const std::vector<std::string>& args, bool* given) {
  *given = false;
  std::string path = kDefaultConfigPath;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") {
      path = args[++i];
      *given = true;
    }
  }
  return path;
}

}  // namespace

const char* Usage() { return kUsage; }

bool ParseOptions(int argc, char** argv, Options* o, std::string* message, bool* help) {
  *help = false;
  o->scheduler.memory_budget_mb = DefaultMemoryBudgetMb();
  o->launcher.runners.runners_dir = NextToBinary({"share/forklet/lang-runners"});
  o->launcher.runners.zygote_library = NextToBinary(
      {"lib/libforklet_zygote.so", FORKLET_INSTALL_LIBDIR "/libforklet_zygote.so"});
  o->launcher.runners.zygote_executable =
      NextToBinary({"bin/forklet-zygote", FORKLET_INSTALL_LIBEXECDIR "/forklet-zygote"});
  o->launcher.criu_preload = NextToBinary(
      {"lib/libforklet_criu_shim.so", FORKLET_INSTALL_LIBDIR "/libforklet_criu_shim.so"});
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      *help = true;
      *message = kUsage;
      return false;
    }
  }
  // The file's settings go first, as if given before the flags: the flags win.
  bool given = false;
  std::string config = ConfigPath(args, &given);
  size_t from_file = 0;
  std::error_code ec;
  if (!config.empty() && (given || fs::exists(config, ec))) {
    auto file = ReadConfigFile(config);
    if (!file) {
      *message = file.error().ToString();
      return false;
    }
    o->config_path = config;
    o->prices = file->prices;
    auto pricing = billing::ApplyPricingSettings(o->pricing, o->prices);
    if (!pricing) {
      *message = "configuration " + config + ": " + pricing.error().ToString();
      return false;
    }
    o->pricing = *pricing;
    from_file = file->flags.size();
    args.insert(args.begin(), file->flags.begin(), file->flags.end());
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string v;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {  // --flag=value
      args.insert(args.begin() + static_cast<long>(i) + 1, a.substr(eq + 1));
      a = a.substr(0, eq);
    }
    auto value = [&]() {
      if (i + 1 >= args.size()) {
        *message = a + " needs a value";
        return false;
      }
      v = args[++i];
      return true;
    };
    // A bad setting from the file is named with the file.
    struct FromFile {
      size_t i, n;
      const std::string& path;
      std::string* message;
      ~FromFile() {
        if (i < n && !message->empty()) *message = "configuration " + path + ": " + *message;
      }
    } from_file_guard{i, from_file, config, message};
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
    } else if (a == "--credentials") {
      if (!value()) return false;
      o->credentials_path = v;
    } else if (a == "--insecure-no-auth" || a == "--no-insecure-no-auth") {
      o->insecure_no_auth = a == "--insecure-no-auth";
    } else if (a == "--tls-cert") {
      if (!value()) return false;
      o->tls_cert = v;
    } else if (a == "--tls-key") {
      if (!value()) return false;
      o->tls_key = v;
    } else if (a == "--regions") {
      if (!value()) return false;
      o->regions.clear();
      std::string item;
      for (std::istringstream in(v); std::getline(in, item, ',');)
        if (!item.empty()) o->regions.insert(item);
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
    } else if (a == "--subtree-pids") {
      if (!number(0, 1ull << 22)) return false;
      o->launcher.subtree_pids_max = n;
    } else if (a == "--instances-cpu-weight") {
      if (!number(2, 262144)) return false;
      o->launcher.instances_cpu_weight = static_cast<uint32_t>(n);
    } else if (a == "--answer-spin-us") {
      if (!number(0, 10000)) return false;
      o->scheduler.answer_spin = std::chrono::microseconds(n);
    } else if (a == "--tmp-size-mb") {
      if (!number(1, 10240)) return false;
      o->launcher.tmp_size_bytes = n << 20;
    } else if (a == "--tmp-pool") {
      if (!number(0, 64)) return false;
      o->launcher.tmp_pool_size = n;
    } else if (a == "--netns-reuse") {
      if (!number(0, 64)) return false;
      o->launcher.netns_reuse_per_function = n;
    } else if (a == "--max-code-mb") {
      if (!number(1, 1024)) return false;
      o->archive.max_zip_bytes = n << 20;
    } else if (a == "--runners-dir") {
      if (!value()) return false;
      o->launcher.runners.runners_dir = v;
    } else if (a == "--zygote-lib") {
      if (!value()) return false;
      o->launcher.runners.zygote_library = v;
    } else if (a == "--zygote-exe") {
      if (!value()) return false;
      o->launcher.runners.zygote_executable = v;
    } else if (a == "--snapshots") {
      if (!value()) return false;
      auto p = core::ParseSnapshotPolicy(v);
      if (!p) {
        *message = "--snapshots: off, on or auto";
        return false;
      }
      o->launcher.snapshot_policy = *p;
    } else if (a == "--function-network") {
      if (!value()) return false;
      auto m = sandbox::net::ParseNetworkMode(v);
      if (!m) {
        *message = "--function-network: egress or none";
        return false;
      }
      o->launcher.network = *m;
    } else if (a == "--function-network-pool") {
      if (!value()) return false;
      o->launcher.egress.pool = v;
    } else if (a == "--criu") {
      if (!value()) return false;
      o->launcher.criu = v;
    } else if (a == "--snapshot-mb") {
      if (!number(1, 1ull << 30)) return false;
      o->launcher.snapshot_max_bytes = n << 20;
    } else if (a == "--node-stem-cells") {
      if (!number(0, 64)) return false;
      o->launcher.node_stem_cells = n;
    } else if (a == "--preforked") {
      if (!number(0, 8)) return false;
      o->launcher.preforked = n;
    } else if (a == "--spare-zygotes") {
      if (!number(0, 16)) return false;
      o->launcher.zygotes.spares = n;
    } else if (a == "--no-warmup") {
      o->warmup = false;
    } else if (a == "--warmup") {
      o->warmup = true;
    } else if (a == "--config") {
      if (!value()) return false;  // read above
    } else if (a == "--billing-granularity-ms") {
      if (!number(1, 60000)) return false;
      o->pricing.granularity_ms = static_cast<uint32_t>(n);
    } else if (a == "--price-per-request" || a == "--price-per-gb-second") {
      if (!value()) return false;
      auto pd = billing::ParseDollars(v);
      if (!pd) {
        *message = a + ": " + pd.error().ToString();
        return false;
      }
      (a == "--price-per-request" ? o->pricing.request_price_pd : o->pricing.gb_second_price_pd) = *pd;
    } else if (a == "--bill-init" || a == "--no-bill-init") {
      o->pricing.bill_init = a == "--bill-init";
    } else if (a == "--ledger" || a == "--no-ledger") {
      o->ledger = a == "--ledger";
    } else if (a == "--event-workers") {
      if (!number(1, 1024)) return false;
      o->events.workers = static_cast<uint32_t>(n);
    } else if (a == "--event-retry-base-ms") {
      if (!number(0, 3600000)) return false;
      o->events.retry_base = std::chrono::milliseconds(n);
    } else if (a == "--event-queue-max") {
      if (!number(0, 100000000)) return false;
      o->events.max_events = n;
    } else if (a == "--event-queue-max-per-function") {
      if (!number(0, 100000000)) return false;
      o->events.max_events_per_function = n;
    } else if (a == "--event-queue-max-mb") {
      if (!number(0, 1 << 20)) return false;
      o->events.max_bytes = n << 20;
    } else if (a == "--event-queue-max-mb-per-function") {
      if (!number(0, 1 << 20)) return false;
      o->events.max_bytes_per_function = n << 20;
    } else if (a == "--event-min-free-disk-mb") {
      if (!number(0, 1 << 20)) return false;
      o->events.min_free_disk_bytes = n << 20;
    } else if (a == "--event-sync" || a == "--no-event-sync") {
      o->event_sync = a == "--event-sync";
    } else if (a == "--drain-grace") {
      if (!number(0, 3600)) return false;
      o->drain_grace = std::chrono::seconds(n);
    } else if (a == "--http-header-timeout") {
      if (!number(1, 3600)) return false;
      o->http_header_timeout = std::chrono::seconds(n);
    } else if (a == "--http-body-timeout") {
      if (!number(1, 3600)) return false;
      o->http_body_timeout = std::chrono::seconds(n);
    } else if (a == "--http-idle-timeout") {
      if (!number(1, 86400)) return false;
      o->http_idle_timeout = std::chrono::seconds(n);
    } else if (a == "--http-max-connections") {
      if (!number(1, 100000)) return false;
      o->http_max_connections = n;
    } else if (a == "--max-concurrent-uploads") {
      if (!number(1, 1024)) return false;
      o->max_concurrent_uploads = n;
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
  // The scheduler decides each billed duration (it is in REPORT), by the billing configuration.
  o->scheduler.billing_granularity_ms = o->pricing.granularity_ms;
  o->scheduler.bill_init = o->pricing.bill_init;
  o->launcher.state_dir = o->state_dir;
  // One daemon per state dir; its cgroups are named after it so a restart finds its leftovers.
  o->launcher.cgroup_tag = std::to_string(std::hash<std::string>{}(o->state_dir) % 0xffffffffu);
}

}  // namespace forklet::daemon
