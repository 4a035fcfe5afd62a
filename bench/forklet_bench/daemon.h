// The daemon under test: a forkletd the bench starts (temp state dir, free port) or one already
// running (--endpoint), and the API calls the bench makes on it besides invoking.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/forklet_bench/http_client.h"
#include "sandbox/error.h"

namespace forklet::bench {

// An empty function of one runtime: the same handler forklet runs and the baselines run.
struct EmptyFunction {
  std::string family;          // "python3": zygote and admin paths
  std::string lambda_runtime;  // "python3.11"
  std::string handler;         // "app.handler"
  std::string file;            // "app.py"
  std::string code;            // the handler's source
  std::string built_dir;       // or: a folder the build made (compiled runtimes), zipped as is
  std::vector<std::string> baseline_argv;  // the handler called once by the bare interpreter
  std::string baseline_name;               // its row: "python3 -c"
  // A zygote start takes a pre-booted stem cell (Node: the daemon boots successors in the
  // background after each start), not a fork of a booted interpreter.
  bool pre_booted = false;
};

// The runtimes forklet serves, each with its empty function.
const std::vector<EmptyFunction>& EmptyFunctions();

struct ZygoteHealth {
  std::string runtime;
  std::string function;  // empty: a spare
  pid_t pid = 0;
};

struct StemCellHealth {
  uint32_t ready = 0, booting = 0, target = 0;
  std::vector<pid_t> pids;  // of the ready ones
};

struct Health {
  std::vector<ZygoteHealth> zygotes;
  std::vector<pid_t> idle_instance_pids;
  uint32_t idle = 0, busy = 0;
  std::map<std::string, StemCellHealth> stem_cells;  // by runtime family
  uint32_t preforked_ready = 0, preforked_forking = 0;  // instances forked ahead, all functions
  uint32_t preforked_functions = 0;                     // functions that want one
};

class DaemonUnderTest {
 public:
  // Starts `forkletd` with a temp state dir on 127.0.0.1:0; waits for its ready line.
  static Result<std::unique_ptr<DaemonUnderTest>> Start(const std::string& forkletd,
                                                        const std::vector<std::string>& extra_args);
  static std::unique_ptr<DaemonUnderTest> Attach(const std::string& endpoint);
  ~DaemonUnderTest();  // Stop()

  // Stops a daemon it started (SIGTERM, wait) and removes its state dir. Idempotent.
  void Stop();

  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }  // 0 when attached

  // Creates (or replaces) function `name` running `fn`'s empty handler, with FORKLET_SNAPSHOT=off:
  // its starts are the forked kinds the rows name; the daemon's default (auto) would restore a
  // function it has checkpointed once that measures faster, a start kind of its own (restore)
  // that made the zygote sweep fail ("start kind restore") when every start of a client was one.
  Status Deploy(const std::string& name, const EmptyFunction& fn, int memory_mb);
  Status Delete(const std::string& name);
  Status DropIdleInstances(const std::string& function = {});
  Status DropZygote(const std::string& family);
  // A new revision of the function (an environment variable set to n): its zygote goes.
  Status Rebind(const std::string& function, int n);
  // Until a spare zygote of the family is ready (10 s at most).
  Status WaitForSpareZygote(const std::string& family);
  Result<Health> GetHealth();
  // Until the family's stem cells are all booted (full: ready up to the target) or, after a
  // drop, until none is booting; at most 10 s. Immediately for a family without stem cells.
  Status WaitForStemCells(const std::string& family, bool full);
  // Until every function that wants an instance forked ahead of demand has one (the function
  // measured has its successor) and none is being forked; at most 1 s (none with --preforked 0).
  Status WaitForPreforked();
  // GET /forklet/v1/stats's warm_path: per runtime, each stage's n, p50_us, p90_us, p99_us, mean_us.
  Result<std::string> WarmPathJson();

 private:
  explicit DaemonUnderTest(std::string endpoint) : api_(endpoint), endpoint_(std::move(endpoint)) {}
  Result<HttpReply> Admin(const std::string& method, const std::string& target,
                          const std::string& body = {});

  HttpConnection api_;  // the bench's control connection (not used for timed requests)
  std::string endpoint_;
  pid_t pid_ = 0;
  std::string state_dir_;
};

}  // namespace forklet::bench
