// Instance pools per function: warm reuse, keep-alive, concurrency limits, memory-driven eviction,
// and asynchronous teardown. The one owner of every instance.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/invocation.h"
#include "runtime/core/launcher.h"
#include "runtime/registry/registry.h"

namespace forklet::core {

struct SchedulerOptions {
  std::chrono::milliseconds keep_alive{10 * 60 * 1000};  // idle instances live this long
  uint32_t max_instances_per_function = 10;  // concurrency limit unless reserved concurrency says
  uint64_t memory_budget_mb = 8192;          // sum of MemorySize over live instances
  uint32_t billing_granularity_ms = 100;
};

struct InstanceCounts {
  uint32_t idle = 0;
  uint32_t busy = 0;
  uint64_t memory_mb = 0;  // reserved by live instances
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions options, Launcher* launcher);
  ~Scheduler();  // destroys every instance

  // Runs one invocation on an idle instance of the function's current revision (warm) or a new
  // one (zygote or cold); 429 (kThrottled) past the concurrency limit or the memory budget.
  InvokeResult Invoke(const registry::Deployed& fn, const std::string& request_id,
                      const std::string& payload);

  // Reserved concurrency (PutFunctionConcurrency); nullopt removes it.
  void SetReservedConcurrency(const std::string& function, std::optional<uint32_t> limit);
  std::optional<uint32_t> ReservedConcurrency(const std::string& function);
  // Tears down idle instances of one function (or all when empty); returns how many.
  size_t DropIdle(const std::string& function);
  // After a delete: forget the function's pool; busy instances go when they finish.
  void ForgetFunction(const std::string& function);

  InstanceCounts Counts(const std::string& function = {});

 private:
  struct Pool {
    std::vector<std::unique_ptr<Instance>> idle;  // most recently used last
    uint32_t busy = 0;                            // running or starting
    std::optional<uint32_t> reserved;
  };
  void Retire(std::unique_ptr<Instance> instance);  // under mu_: to the teardown thread
  bool EvictOneIdleLocked();                         // least recently used, any function
  void TeardownLoop();
  void KeepAliveLoop();

  SchedulerOptions options_;
  Launcher* launcher_;
  std::mutex mu_;
  std::map<std::string, Pool> pools_;
  uint64_t live_memory_mb_ = 0;

  std::condition_variable cv_;
  std::deque<std::unique_ptr<Instance>> retiring_;
  bool stopping_ = false;
  std::thread teardown_thread_;
  std::thread keep_alive_thread_;
};

}  // namespace forklet::core
