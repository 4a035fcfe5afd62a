// Picking an instance for an invocation, returning it, retiring it.
#include "runtime/core/scheduler.h"

#include <sched.h>
#include <signal.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runtime/core/report.h"
#include "runtime/log/log.h"
#include "runtime/timeline/request_timeline.h"

namespace forklet::core {
namespace {

int UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string ErrorBody(const std::string& message, const std::string& type) {
  return nlohmann::json{{"errorMessage", message}, {"errorType", type}}.dump();
}

constexpr auto kParkGrace = std::chrono::milliseconds(50);  // idle this long: frozen

// One pool per version of a function identity: $LATEST and a published version never share one.
std::string PoolKey(const registry::FunctionConfig& cfg) {
  return cfg.name + "/" + cfg.function_id + "/" + cfg.version;
}

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options, Launcher* launcher)
    : options_(options), launcher_(launcher), cpus_(UsableCpus()) {
  FitStandbyLocked();
  for (int i = 0; i < kTeardownThreads; ++i) teardown_threads_.emplace_back([this] { TeardownLoop(); });
  keep_alive_thread_ = std::thread([this] { KeepAliveLoop(); });
  park_thread_ = std::thread([this] { ParkLoop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    for (auto& [name, pool] : pools_)
      for (auto& inst : pool.idle) retiring_.push_back({std::move(inst), Clock::time_point{}});
    pools_.clear();
    stopping_ = true;
  }
  cv_.notify_all();
  park_cv_.notify_all();
  for (auto& t : teardown_threads_) t.join();
  keep_alive_thread_.join();
  park_thread_.join();
}

void Scheduler::FitStandbyLocked() {
  if (!launcher_) return;  // tests that start no instance
  launcher_->SetStandbyAllowance(options_.memory_budget_mb > live_memory_mb_
                                     ? options_.memory_budget_mb - live_memory_mb_
                                     : 0);
}

// How long a retired instance lives on before its SIGKILL. Retire runs before the invocation's
// answer is written (the instance that served a fresh-instance request, a new revision's
// predecessor): killed at once, its exit (unmapping a Python process: ~0.5 ms of CPU) ran
// beside the daemon's thread writing that answer, and on this 2-CPU VM delayed it (daemon time
// of a zygote start 0.65 ms against 0.19 with the kill 3 ms later, --instances-cpu-weight 4096;
// 0.92-0.94 -> 0.77-1.03 ms at the client with the default). It runs nothing meanwhile that
// anyone waits for: it is no longer in any pool, and it has answered (or is being retired for
// not answering in time; 2 ms more of a timed-out handler is within its park grace).
constexpr auto kRetireKillDelay = std::chrono::milliseconds(2);

void Scheduler::Retire(std::unique_ptr<Instance> instance) {
  live_memory_mb_ -= instance->memory_mb();
  FitStandbyLocked();
  retiring_.push_back({std::move(instance), Clock::now() + kRetireKillDelay});
  cv_.notify_all();
}

void Scheduler::TeardownLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !retiring_.empty(); });
    while (!retiring_.empty()) {
      // In retirement order, so the front is due first; at shutdown nothing waits.
      const auto now = Clock::now();
      if (const auto due = retiring_.front().kill_at; !stopping_ && now < due) {
        cv_.wait_until(lock, due);
        continue;
      }
      // Every one that is due is killed now, not when a thread gets to it: their exits run in
      // parallel while this thread reaps one (a churn of new instances outruns serial exits).
      for (auto& r : retiring_) {
        if (!stopping_ && r.kill_at > now) break;
        r.instance->Kill();
      }
      auto inst = std::move(retiring_.front().instance);
      retiring_.pop_front();
      ++tearing_down_;
      lock.unlock();
      inst.reset();  // reap (killed above), remove the cgroup, give back its /tmp area
      lock.lock();
      --tearing_down_;
    }
    if (stopping_) return;
  }
}

void Scheduler::ParkLoop() {
  // kParkGrace, a moment of grace after the response: a runtime that exits right after answering
  // (a custom runtime's one-shot bootstrap) is seen to have ended, instead of being frozen on its
  // way out and found dead by the next invocation. Unfrozen work after a response is bounded by
  // it (and the CPU quota: 12.5 ms of CPU at 128 MB).
  constexpr auto kNothingDue = std::chrono::hours(24);
  std::unique_lock lock(mu_);
  auto next = Clock::now() + kNothingDue;
  for (;;) {
    park_next_ = next;
    park_cv_.wait_until(lock, next, [&] { return stopping_ || park_pending_; });
    park_next_ = Clock::time_point::min();  // scanning: whatever is released meanwhile is seen
    if (stopping_) return;
    park_pending_ = false;
    const auto now = Clock::now();
    next = now + kNothingDue;
    for (auto& [name, pool] : pools_) {
      for (auto& inst : pool.idle) {
        if (inst->parked()) continue;
        if (now - inst->last_used >= kParkGrace) {
          inst->Park();  // one write; nothing waits for the tasks to stop
        } else {
          next = std::min(next, inst->last_used + kParkGrace);
        }
      }
    }
  }
}

void Scheduler::KeepAliveLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500));
    auto now = Clock::now();
    for (auto& [name, pool] : pools_) {
      auto& idle = pool.idle;
      for (size_t i = 0; i < idle.size();) {
        if (now - idle[i]->last_used >= options_.keep_alive) {
          auto inst = std::move(idle[i]);
          idle.erase(idle.begin() + static_cast<long>(i));
          Retire(std::move(inst));
        } else {
          ++i;
        }
      }
    }
  }
}

bool Scheduler::EvictOneIdleLocked() {
  Pool* victim_pool = nullptr;
  size_t victim = 0;
  for (auto& [name, pool] : pools_) {
    for (size_t i = 0; i < pool.idle.size(); ++i) {
      if (!victim_pool || pool.idle[i]->last_used < victim_pool->idle[victim]->last_used) {
        victim_pool = &pool;
        victim = i;
      }
    }
  }
  if (!victim_pool) return false;
  auto inst = std::move(victim_pool->idle[victim]);
  victim_pool->idle.erase(victim_pool->idle.begin() + static_cast<long>(victim));
  Retire(std::move(inst));
  return true;
}

InvokeResult Scheduler::Invoke(const registry::Deployed& fn, const std::string& request_id,
                               const std::string& payload, bool fresh_instance,
                               const std::string& invoked_arn) {
  timeline::Mark(timeline::Point::kRouted);
  struct InFlight {
    std::atomic<int>& n;
    explicit InFlight(std::atomic<int>& count) : n(count) { n.fetch_add(1, std::memory_order_relaxed); }
    ~InFlight() { n.fetch_sub(1, std::memory_order_relaxed); }
  } in_flight(invoking_);
  const auto& cfg = fn.config;
  const std::string generation = Generation(cfg);
  auto t0 = Clock::now();
  InvokeResult result;
  result.start_epoch_ms = EpochMs();
  std::unique_ptr<Instance> instance;
  double thaw_ms = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      Pool& pool = pools_[PoolKey(cfg)];
      pool.name = cfg.name;
      pool.version_key = registry::VersionKey(cfg);
      // Idle instances of an older revision are never used again.
      for (size_t i = 0; i < pool.idle.size();) {
        if (pool.idle[i]->generation() != generation) {
          auto old = std::move(pool.idle[i]);
          pool.idle.erase(pool.idle.begin() + static_cast<long>(i));
          Retire(std::move(old));
        } else {
          ++i;
        }
      }
      // Reserved concurrency bounds what runs at once, on warm instances too (0: nothing runs).
      const uint32_t limit = cfg.reserved_concurrency.value_or(options_.max_instances_per_function);
      if (pool.busy >= limit) {
        result.outcome = Outcome::kThrottled;
        result.error_message = "Rate Exceeded.";
        return result;
      }
      while (!pool.idle.empty() && !fresh_instance && !instance) {
        instance = std::move(pool.idle.back());
        pool.idle.pop_back();
        // One that ended while idle (e.g. a custom runtime that exited after its response) is
        // retired here: the invocation gets a new instance instead of its death.
        if (!instance->QuietWhileIdle()) Retire(std::move(instance));
      }
      if (!instance) {
        while (live_memory_mb_ + cfg.memory_mb > options_.memory_budget_mb && EvictOneIdleLocked()) {
        }
        if (live_memory_mb_ + cfg.memory_mb > options_.memory_budget_mb) {
          result.outcome = Outcome::kThrottled;
          result.error_message = "Rate Exceeded. (no memory left for a new instance on this node)";
          return result;
        }
        live_memory_mb_ += cfg.memory_mb;
      }
      pool.busy++;
    }
    // The thaw (a write to the freezer) runs outside the lock: it is this invocation's alone, and
    // the park thread no longer sees an instance taken from the idle list.
    if (!instance || !instance->parked()) break;
    auto t_thaw = Clock::now();
    auto thawed = instance->Unpark();
    if (thawed) {
      thaw_ms = MsSince(t_thaw);
      break;
    }
    log::Warning("instance " + std::to_string(instance->pid()) + " could not be thawed: " +
                 thawed.error().ToString());
    std::lock_guard lock(mu_);
    pools_[PoolKey(cfg)].busy--;
    Retire(std::move(instance));  // and choose again
  }
  if (instance) {
    result.start = StartKind::kWarm;
    result.stages.emplace_back("thaw", thaw_ms);
    timeline::MarkWarm(registry::RuntimeFamily(cfg.runtime));
  }

  auto release = [&](std::unique_ptr<Instance> inst, bool new_instance_failed) {
    std::lock_guard lock(mu_);
    auto it = pools_.find(PoolKey(cfg));
    Pool& pool = it->second;  // a pool with a busy invocation is never erased
    pool.busy--;
    if (inst) running_.erase(inst->pid());
    if (new_instance_failed) {
      live_memory_mb_ -= cfg.memory_mb;
      FitStandbyLocked();
    } else if (inst) {
      if (inst->dead() || inst->generation() != generation || stopping_ || fresh_instance ||
          pool.forgotten) {
        Retire(std::move(inst));
      } else {
        pool.idle.push_back(std::move(inst));
        // Frozen soon after, off this path; the park thread is woken only if it would not
        // look again before this instance's grace ends.
        if (park_next_ > pool.idle.back()->last_used + kParkGrace) {
          park_pending_ = true;
          park_cv_.notify_one();
        }
      }
    }
    if (pool.forgotten && pool.busy == 0 && pool.idle.empty()) pools_.erase(it);
  };

  if (!instance) {
    starting_++;
    auto launched = launcher_->Launch(fn);
    starting_--;
    {
      // Only now, as the start may have taken a stem cell: they keep what instances leave of
      // the budget, and the pool boots their successors.
      std::lock_guard lock(mu_);
      FitStandbyLocked();
    }
    if (!launched) {
      release(nullptr, true);
      result.outcome = Outcome::kSetupFailed;
      result.start = StartKind::kZygote;
      result.error_message = launched.error().ToString();
      result.body = ErrorBody(result.error_message, "ServiceException");
      result.total_ms = MsSince(t0);
      return result;
    }
    result.start = launched->start;
    result.stages = std::move(launched->stages);
    result.init_ms = MsSince(t0);
    if (!launched->instance) {  // the function's own init failed
      release(nullptr, true);
      auto& e = launched->init_error;
      result.outcome = e.outcome;
      result.body = e.body;
      result.log = e.output;
      // Lambda bills a failed init: it runs again inside the invocation, whose time is billed.
      result.billed_ms = BilledMs(result.init_ms, options_.billing_granularity_ms);
      result.total_ms = MsSince(t0);
      return result;
    }
    instance = std::move(launched->instance);
    // Its init ran on CPU shares alone (as Lambda's init, not throttled by the memory size);
    // its invocations, and whatever it runs after them, get the quota.
    if (auto s = instance->cgroup()->LimitCpu(CpuQuotaPermilleFor(cfg.memory_mb)); !s)
      log::Warning("instance " + std::to_string(instance->pid()) + ": no CPU quota: " +
                   s.error().ToString());
    // its /var/task and /opt: the trees stay until the instance is gone
    instance->PinCode(fn.opt ? std::make_shared<const std::pair<std::shared_ptr<const registry::CodeTree>,
                                                              std::shared_ptr<const registry::CodeTree>>>(fn.code, fn.opt)
                             : std::shared_ptr<const void>(fn.code));
  }

  {
    std::lock_guard lock(mu_);
    running_.insert(instance->pid());  // until release: KillRunning's target
  }
  // The one invocation in the scheduler may keep asking for its result instead of sleeping: a
  // CPU is free for it (none with one CPU), and a warm handler's result is often that near.
  // With two, the other one's threads want that CPU. Off unless --answer-spin-us says.
  const bool alone = invoking_.load(std::memory_order_relaxed) == 1;
  const auto spin = alone && cpus_ > 1 ? options_.answer_spin : std::chrono::microseconds(0);
  auto t_invoke = Clock::now();
  timeline::Mark(timeline::Point::kAdmitted);
  auto deadline = t_invoke + std::chrono::seconds(cfg.timeout_s);
  int64_t deadline_epoch = EpochMs() + static_cast<int64_t>(cfg.timeout_s) * 1000;
  ChannelResult ch = instance->Invoke(request_id, deadline_epoch, payload, deadline, invoked_arn, spin);
  result.duration_ms = MsSince(t_invoke);
  result.outcome = ch.outcome;
  result.log = std::move(ch.output);
  result.stages.emplace_back("handler", ch.handler_ms);
  switch (ch.outcome) {
    case Outcome::kSuccess:
    case Outcome::kUnhandled: {
      result.body = std::move(ch.body);
      auto usage = instance->TakeUsage();
      result.max_memory_mb = usage.peak_memory_mb;
      result.cpu_ms = usage.cpu_ms;
      break;
    }
    case Outcome::kTimeout:
      result.duration_ms = cfg.timeout_s * 1000.0;  // Lambda bills the whole timeout
      result.body = ErrorBody(TimeoutMessage(cfg.timeout_s), "Sandbox.Timedout");
      break;
    case Outcome::kOutOfMemory:
      result.body = ErrorBody("RequestId: " + request_id +
                                  " Error: Runtime exited with error: signal: killed",
                              "Runtime.OutOfMemory");
      result.max_memory_mb = cfg.memory_mb;
      break;
    default:
      result.body = ErrorBody("RequestId: " + request_id + " Error: " +
                                  (ch.exit_reason.empty() ? "Runtime exited without providing a reason"
                                                          : "Runtime exited with error: " + ch.exit_reason),
                              "Runtime.ExitError");
      break;
  }
  double billed_init = options_.bill_init && result.start != StartKind::kWarm ? result.init_ms : 0;
  result.billed_ms = BilledMs(result.duration_ms + billed_init, options_.billing_granularity_ms);
  release(std::move(instance), false);
  result.total_ms = MsSince(t0);
  result.end_epoch_ms = EpochMs();
  return result;
}

void Scheduler::Prepare(const registry::Deployed& fn) {
  Prepare(fn.config);
  if (launcher_) launcher_->PrepareCode(fn);
}

void Scheduler::Prepare(const registry::FunctionConfig& config) {
  if (launcher_) launcher_->Prepare(registry::RuntimeFamily(config.runtime));
  std::lock_guard lock(mu_);
  FitStandbyLocked();  // a new pool gets the budget's allowance at once
}

size_t Scheduler::DropIdle(const std::string& function) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [key, pool] : pools_) {
    if (!function.empty() && pool.name != function) continue;
    for (auto& inst : pool.idle) {
      Retire(std::move(inst));
      ++n;
    }
    pool.idle.clear();
  }
  return n;
}

void Scheduler::ForgetFunction(const std::string& function) {
  if (launcher_) launcher_->ForgetFunction(function);  // none in tests of the API alone
  std::lock_guard lock(mu_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    Pool& pool = it->second;
    if (pool.name != function && pool.version_key != function) {
      ++it;
      continue;
    }
    for (auto& inst : pool.idle) Retire(std::move(inst));
    pool.idle.clear();
    pool.forgotten = true;  // a re-created name gets another pool; this one ends with its invocations
    it = pool.busy == 0 ? pools_.erase(it) : std::next(it);
  }
}

void Scheduler::FunctionChanged(const std::string& function) {
  if (launcher_) launcher_->ForgetFunction(function);
  // Only $LATEST changes: the idle instances of published versions (immutable) stay warm.
  std::lock_guard lock(mu_);
  for (auto& [key, pool] : pools_) {
    if (pool.version_key != function) continue;
    for (auto& inst : pool.idle) Retire(std::move(inst));
    pool.idle.clear();
  }
}

std::vector<pid_t> Scheduler::IdlePids() {
  std::lock_guard lock(mu_);
  std::vector<pid_t> pids;
  for (auto& [name, pool] : pools_)
    for (auto& inst : pool.idle) pids.push_back(inst->pid());
  return pids;
}

InstanceCounts Scheduler::Counts(const std::string& function) {
  std::lock_guard lock(mu_);
  InstanceCounts c;
  for (auto& [key, pool] : pools_) {
    if (!function.empty() && pool.name != function) continue;
    c.idle += static_cast<uint32_t>(pool.idle.size());
    c.busy += pool.busy;
    for (auto& inst : pool.idle) c.idle_memory_mb += inst->memory_mb();
  }
  c.memory_mb = live_memory_mb_;
  c.starting = std::min(starting_.load(), c.busy);
  if (function.empty()) c.retiring = static_cast<uint32_t>(retiring_.size() + tearing_down_);
  return c;
}

void Scheduler::SetLiveOptions(std::chrono::milliseconds keep_alive,
                               uint32_t max_instances_per_function, uint64_t memory_budget_mb) {
  std::lock_guard lock(mu_);
  options_.keep_alive = keep_alive;  // the keep-alive thread applies it within half a second
  options_.max_instances_per_function = max_instances_per_function;
  options_.memory_budget_mb = memory_budget_mb;
  while (live_memory_mb_ > options_.memory_budget_mb && EvictOneIdleLocked()) {
  }
  FitStandbyLocked();
}

SchedulerOptions Scheduler::options() {
  std::lock_guard lock(mu_);
  return options_;
}

Scheduler::Admission::~Admission() {
  if (!scheduler_) return;
  std::lock_guard lock(scheduler_->mu_);
  if (--scheduler_->in_flight_ == 0) scheduler_->drained_cv_.notify_all();
}

Scheduler::Admission& Scheduler::Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    Admission released(std::move(*this));
    scheduler_ = std::exchange(other.scheduler_, nullptr);
  }
  return *this;
}

Scheduler::Admission Scheduler::Admit() {
  std::lock_guard lock(mu_);
  if (draining_) return Admission();
  ++in_flight_;
  return Admission(this);
}

void Scheduler::BeginDrain() {
  std::lock_guard lock(mu_);
  draining_ = true;
}

bool Scheduler::draining() {
  std::lock_guard lock(mu_);
  return draining_;
}

uint32_t Scheduler::InFlight() {
  std::lock_guard lock(mu_);
  return in_flight_;
}

uint32_t Scheduler::WaitForInFlight(std::chrono::milliseconds grace) {
  std::unique_lock lock(mu_);
  drained_cv_.wait_for(lock, grace, [&] { return in_flight_ == 0; });
  return in_flight_;
}

size_t Scheduler::KillRunning() {
  std::lock_guard lock(mu_);
  // Safe: a pid leaves running_ (under mu_) before its instance is reaped, so it is never reused.
  for (pid_t pid : running_) kill(pid, SIGKILL);
  return running_.size();
}

}  // namespace forklet::core
