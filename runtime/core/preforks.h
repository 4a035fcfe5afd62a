// Instances forked ahead of demand from a function's own zygote (runtimes whose zygote is per
// function: Python, native, provided). A preforked instance is sandboxed, in its cgroup with the
// function's limits, with the function's code at /var/task and its runner's post-fork work done,
// waiting for INIT: a new instance of that function takes one and only runs its init. It never
// served anyone (its start kind stays `zygote`). After a start of a function, a successor is
// forked in idle time, within the memory allowance the scheduler leaves to standby processes. A
// function's preforked instances go with a code or configuration change, a delete, a drop-zygote,
// and after `linger` without a start of it (so that its bound zygote can retire in turn).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/instance.h"
#include "runtime/registry/registry.h"

namespace forklet::core {

struct PreforkCounts {
  size_t ready = 0;
  size_t forking = 0;
  size_t functions = 0;      // functions with one ready or wanted
  uint64_t reserved_mb = 0;  // (ready + forking) x the standby charge of each
  double last_fork_ms = 0;   // how long the last one took to make, off the request path
  std::vector<pid_t> pids;   // of the ready ones
};

class PreforkPool {
 public:
  // make forks one instance of the function (its code, cgroup limits and network) and reads its
  // sandbox setup report; it must not send INIT. each_mb: what one counts against the memory
  // budget while it waits (it holds a few MB: it runs no function code before INIT).
  using Maker = std::function<Result<std::unique_ptr<Instance>>(const registry::Deployed&)>;
  PreforkPool(size_t per_function, uint64_t each_mb, Clock::duration linger, Maker make);
  ~PreforkPool();  // stops the filler and destroys every preforked instance

  // key: the function's version key (registry::VersionKey). A ready instance of exactly this
  // deployment (checked quiet), or nullptr.
  std::unique_ptr<Instance> Take(const std::string& key, const std::string& generation);
  // After a start of fn: keep per_function of it ready, forked in idle time. A new generation of
  // the function replaces the old one's.
  void Want(const std::string& key, const registry::Deployed& fn, const std::string& generation,
            const std::string& family);
  // Its code or configuration changed, or it was deleted: its preforked instances go.
  void Forget(const std::string& key);
  // forklet drop-zygote: every preforked instance of the runtime goes (the next start is cold).
  size_t Drop(const std::string& family);
  // The memory (MB) they may hold under the scheduler's budget: beyond it, ready ones go. The
  // scheduler sets it after every start (not during one): a successor is forked only then.
  void SetAllowance(uint64_t mb);
  PreforkCounts Counts();

 private:
  struct Entry {
    std::string key;
    registry::Deployed fn;
    std::string generation;
    std::string family;
    std::deque<std::unique_ptr<Instance>> ready;
    size_t forking = 0;
    Clock::time_point wanted_at{};
  };
  void FillLoop();
  size_t TotalLocked() const;
  // A function that needs one more and may have it now, or nullptr; sets *next_at to when one
  // will (a refill delay or an expiry), under mu_.
  Entry* NeedingLocked(Clock::time_point now, Clock::time_point* next_at);
  void RetireLocked(std::unique_ptr<Instance> instance);

  const size_t per_function_;
  const uint64_t each_mb_;
  const Clock::duration linger_;
  Maker make_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::map<std::string, Entry> entries_;            // by version key
  std::vector<std::unique_ptr<Instance>> retired_;  // destroyed by the filler, off the caller's path
  uint64_t allowance_mb_ = 0;                       // none until the scheduler says
  bool stop_ = false;
  double last_fork_ms_ = 0;
  Clock::time_point started_at_{};  // the last Take or Want: successors wait kRefillDelay after it
  std::string last_error_;
  std::thread filler_;
};

}  // namespace forklet::core
