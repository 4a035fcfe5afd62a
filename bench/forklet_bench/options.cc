// forklet-bench's command line.
#include "bench/forklet_bench/options.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace forklet::bench {
namespace fs = std::filesystem;
namespace {

const char* kUsage = R"(usage: forklet-bench [options]
Measures empty-function response times through forkletd for each runtime (Python, Node.js) and
start kind (cold, zygote or pre-booted, warm) as a client sees them, next to baselines run with the same handler and the same timing, a
concurrency sweep, the stage breakdown and the memory of an idle instance. Runs as root.

  --endpoint URL          use a running daemon (http://127.0.0.1:9000) instead of starting one
  --forkletd PATH         the daemon to start (default: next to this binary)
  --daemon-arg ARG        pass ARG to the daemon it starts (repeatable)
  --cold N --zygote N --warm N
                          samples per start kind (default 50, 500, 10000)
  --pre-booted N          zygote samples of Node.js, whose zygote start takes a pre-booted stem
                          cell and waits for its successor to boot first (default 100)
  --warmup N              untimed requests before each start kind (default 20; cold: 2)
  --memory MB             the benchmark functions' memory size (default 1769: a full core of CPU
                          quota; with 128 a back-to-back client meets the function's CPU share,
                          which shows as the warm tail)
  --baseline N            runs of each process baseline (default 50)
  --floor-iterations N    clone() iterations inside the clone floor (default 2000)
  --clients LIST          concurrency sweep levels (default 1,2,4,8)
  --sweep-seconds S       duration of each sweep level (default 2)
  --no-baselines --no-sweep --no-memory
                          skip a part
  --out DIR               write DIR/forklet-bench.{txt,json,csv,png}
  --json FILE --csv FILE --table FILE
                          machine-readable results; the table as printed
  --plot FILE.png|.svg    latency distributions and the sweep, drawn by plot_bench.py (matplotlib)
)";

bool Int(const std::string& flag, const char* v, int min, int* out, std::string* message) {
  char* end = nullptr;
  long n = strtol(v, &end, 10);
  if (!*v || *end || n < min || n > 10000000) {
    *message = flag + ": expected a number >= " + std::to_string(min) + ", got '" + v + "'";
    return false;
  }
  *out = static_cast<int>(n);
  return true;
}

}  // namespace

std::string NextToBinary(const std::string& relative) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path base : {exe, exe.parent_path()})
    if (fs::exists(base / relative, ec)) return (base / relative).string();
  return (exe / relative).string();
}

bool ParseOptions(int argc, char** argv, Options* o, std::string* message, bool* help) {
  *help = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = nullptr;
    auto value = [&]() {
      if (i + 1 >= argc) {
        *message = a + " needs a value";
        return false;
      }
      v = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      *help = true;
      *message = kUsage;
      return false;
    } else if (a == "--endpoint") {
      if (!value()) return false;
      o->endpoint = v;
    } else if (a == "--forkletd") {
      if (!value()) return false;
      o->forkletd = v;
    } else if (a == "--daemon-arg") {
      if (!value()) return false;
      o->daemon_args.push_back(v);
    } else if (a == "--cold" || a == "--zygote" || a == "--warm" || a == "--warmup" ||
               a == "--baseline" || a == "--floor-iterations" || a == "--pre-booted") {
      int* target = a == "--cold" ? &o->cold : a == "--zygote" ? &o->zygote : a == "--warm" ? &o->warm
                    : a == "--warmup" ? &o->warmup : a == "--baseline" ? &o->baseline
                    : a == "--pre-booted" ? &o->pre_booted : &o->floor_iterations;
      if (!value() || !Int(a, v, a == "--warmup" ? 0 : 1, target, message)) return false;
    } else if (a == "--clients") {
      if (!value()) return false;
      o->clients.clear();
      std::stringstream ss(v);
      for (std::string part; std::getline(ss, part, ',');) {
        int n = 0;
        if (!Int(a, part.c_str(), 1, &n, message)) return false;
        if (n > 64) {
          *message = "--clients: at most 64 per level";
          return false;
        }
        o->clients.push_back(n);
      }
    } else if (a == "--memory") {
      if (!value() || !Int(a, v, 128, &o->memory_mb, message)) return false;
      if (o->memory_mb > 10240) {
        *message = "--memory: at most 10240 (Lambda's limit)";
        return false;
      }
    } else if (a == "--sweep-seconds") {
      if (!value()) return false;
      o->sweep_seconds = atof(v);
      if (o->sweep_seconds <= 0 || o->sweep_seconds > 600) {
        *message = "--sweep-seconds: expected a duration from 0 to 600";
        return false;
      }
    } else if (a == "--no-baselines") {
      o->baselines = false;
    } else if (a == "--no-sweep") {
      o->sweep = false;
    } else if (a == "--no-memory") {
      o->memory = false;
    } else if (a == "--out") {
      if (!value()) return false;
      std::string d = v;
      o->json = d + "/forklet-bench.json";
      o->csv = d + "/forklet-bench.csv";
      o->plot = d + "/forklet-bench.png";
      o->table = d + "/forklet-bench.txt";
    } else if (a == "--json" || a == "--csv" || a == "--plot" || a == "--table") {
      if (!value()) return false;
      (a == "--json" ? o->json : a == "--csv" ? o->csv : a == "--plot" ? o->plot : o->table) = v;
    } else {
      *message = "unknown option " + a;
      return false;
    }
  }
  if (o->forkletd.empty()) o->forkletd = NextToBinary("forkletd");
  return true;
}


}  // namespace forklet::bench
