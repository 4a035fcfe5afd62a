// Instance pools per function: warm reuse, keep-alive, concurrency limits, memory-driven eviction,
// and asynchronous teardown. The one owner of every instance.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/core/invocation.h"
#include "runtime/core/launcher.h"
#include "runtime/registry/registry.h"

namespace forklet::core {

struct SchedulerOptions {
  std::chrono::milliseconds keep_alive{10 * 60 * 1000};  // idle instances live this long
  uint32_t max_instances_per_function = 10;  // concurrency limit unless reserved concurrency says
  uint64_t memory_budget_mb = 8192;          // sum of MemorySize over live instances (and stem cells)
  uint32_t billing_granularity_ms = 100;
  bool bill_init = false;  // billed duration includes a new instance's init (forkletd --bill-init)
  // How long the one invocation in flight asks for its result before sleeping (--answer-spin-us;
  // off by default: it helps one connection to a fast handler and costs everything else, see
  // docs/design.md "The warm path's p50 and where the client runs").
  std::chrono::microseconds answer_spin{0};
};

struct InstanceCounts {
  uint32_t idle = 0;
  uint32_t busy = 0;
  uint64_t memory_mb = 0;  // reserved by live instances
  uint32_t starting = 0;        // of busy: a new instance is being made for the invocation
  uint64_t idle_memory_mb = 0;  // of memory_mb: held by idle instances, which can be evicted
  uint32_t retiring = 0;        // killed, not yet reaped and removed (not in memory_mb)
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions options, Launcher* launcher);
  ~Scheduler();  // destroys every instance

  // Runs one invocation on an idle instance of the function's current revision (warm) or a new
  // one (zygote or cold); 429 (kThrottled) past the concurrency limit (the function's reserved
  // concurrency, else the default) or the memory budget. Pools, counts and limits belong to one
  // function identity (FunctionConfig::function_id): a deleted and re-created name shares none.
  // A new instance holds fn's code tree for its life.
  // fresh_instance (X-Forklet-Fresh-Instance, for benchmarks): always a new instance, retired
  // after the invocation; the idle pool is left as it is.
  // invoked_arn: the ARN the client named (an alias's), for the context; empty: the version's.
  InvokeResult Invoke(const registry::Deployed& fn, const std::string& request_id,
                      const std::string& payload, bool fresh_instance = false,
                      const std::string& invoked_arn = {});

  // A function was deployed or reconfigured: what its runtime keeps ready (stem cells) starts.
  void Prepare(const registry::FunctionConfig& config);
  void Prepare(const registry::Deployed& fn);  // and its code image (runtime/core/code_mounts.h)
  // Tears down idle instances of one function (or all when empty); returns how many.
  size_t DropIdle(const std::string& function);
  // After a delete: forget the function's pool, snapshot and zygote; busy instances go when they finish.
  void ForgetFunction(const std::string& function);  // a name, or NAME:VERSION for one version
  // After a code or configuration change: its idle instances, its snapshot and its zygote go.
  void FunctionChanged(const std::string& function);

  InstanceCounts Counts(const std::string& function = {});

  // Live changes (SIGHUP): keep-alive, default concurrency, memory budget. Warm instances stay,
  // except idle ones past a smaller budget (least recently used first).
  void SetLiveOptions(std::chrono::milliseconds keep_alive, uint32_t max_instances_per_function,
                      uint64_t memory_budget_mb);
  SchedulerOptions options();

  // Draining (SIGTERM, POST admin/drain). An invocation holds an Admission from its acceptance
  // until its result is in hand (an Event one too, while it waits for its thread); a drain refuses
  // new ones and waits for those admitted.
  class Admission {
   public:
    Admission() = default;
    Admission(Admission&& other) noexcept : scheduler_(std::exchange(other.scheduler_, nullptr)) {}
    Admission& operator=(Admission&& other) noexcept;  // releases the one held before
    ~Admission();
    explicit operator bool() const { return scheduler_ != nullptr; }

   private:
    friend class Scheduler;
    explicit Admission(Scheduler* scheduler) : scheduler_(scheduler) {}
    Scheduler* scheduler_ = nullptr;
  };
  Admission Admit();  // empty while draining
  void BeginDrain();  // one-way: a draining node accepts no invocation until it restarts
  bool draining();
  uint32_t InFlight();  // admitted invocations not finished
  // Waits until no admitted invocation is left or `grace` has passed; returns how many are left.
  uint32_t WaitForInFlight(std::chrono::milliseconds grace);
  // After the grace period: kills the instances still running an invocation (the invocation ends
  // as Runtime.ExitError) so that shutdown does not wait for the functions' timeouts.
  size_t KillRunning();
  std::vector<pid_t> IdlePids();  // of every idle instance (health; memory measurements)

 private:
  struct Pool {
    std::string name;                             // the function's name
    std::string version_key;                      // registry::VersionKey: NAME or NAME:VERSION
    std::vector<std::unique_ptr<Instance>> idle;  // most recently used last
    uint32_t busy = 0;                            // running or starting
    bool forgotten = false;                       // deleted: goes when its last invocation ends
  };
  // Under mu_: killed at once (its processes die meanwhile), reaped and removed by a teardown thread.
  void Retire(std::unique_ptr<Instance> instance);
  // Under mu_, after live memory or the budget changed: the launcher's stem cells may hold what
  // instances leave of the budget (they yield to instances, never the other way round).
  void FitStandbyLocked();
  bool EvictOneIdleLocked();                         // least recently used, any function
  void TeardownLoop();
  void KeepAliveLoop();
  // Freezes instances that became idle (Instance::Park), under mu_ so that none is taken or
  // retired meanwhile; off the invocation path: the response goes out first.
  void ParkLoop();

  SchedulerOptions options_;
  Launcher* launcher_;
  std::mutex mu_;
  std::map<std::string, Pool> pools_;  // by name and function id
  uint64_t live_memory_mb_ = 0;

  std::condition_variable cv_;
  // Draining: admissions, the instances running an invocation (pids: KillRunning), starts.
  bool draining_ = false;
  uint32_t in_flight_ = 0;
  std::condition_variable drained_cv_;
  std::set<pid_t> running_;
  const int cpus_;  // this daemon may run on (its affinity): spinning needs a second one
  std::atomic<int> invoking_{0};  // invocations inside Invoke (admission to release)
  std::atomic<uint32_t> starting_{0};
  // Retired instances, killed by the teardown threads once kill_at has passed (Retire).
  struct Retiring {
    std::unique_ptr<Instance> instance;
    Clock::time_point kill_at;
  };
  std::deque<Retiring> retiring_;
  uint32_t tearing_down_ = 0;  // taken off retiring_ by the teardown thread, not yet destroyed
  bool stopping_ = false;
  // Tearing an instance down mostly waits (its exit, the kernel's grace periods for its mounts and
  // cgroups): several at once, so that a churn of new instances never outruns their removal.
  static constexpr int kTeardownThreads = 4;
  std::vector<std::thread> teardown_threads_;
  std::thread keep_alive_thread_;
  bool park_pending_ = false;  // an instance became idle and is not frozen yet
  // When the park thread wakes next by itself: an instance that becomes idle needs no wake-up
  // when that is no later than its grace ends (back-to-back invocations wake it once per grace).
  std::chrono::steady_clock::time_point park_next_ = std::chrono::steady_clock::time_point::max();
  std::condition_variable park_cv_;
  std::thread park_thread_;
};

}  // namespace forklet::core
