// Pre-booted instances ("stem cells", as OpenWhisk calls them) for a runtime whose booted
// interpreter cannot be forked: Node is multithreaded, so its zygote forks a sandboxed child that
// then boots Node. A stem cell is such a child forked without code: sandboxed, booted, waiting for
// INIT with an empty /var/task. A new instance of any function of the runtime takes one, gets its
// cgroup limits and its code (zygote kMountCode), and only loads the function. The pool is kept
// topped up in the background. A stem cell serves one function once: it never returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/instance.h"

namespace forklet::core {

// The runtime families whose new instances come from stem cells.
bool UsesStemCells(const std::string& family);

struct StemCell {
  std::unique_ptr<Instance> instance;  // booted, no function yet
  uint32_t uid = 0;                    // its ids (ChildSpec), for the zygote's code mount
  uint32_t gid = 0;
  double boot_ms = 0;                  // fork to booted, as the pool saw it
  std::string veth;                    // the host end of its eth0 (egress); empty: loopback only
};

struct StemCellCounts {
  size_t ready = 0;
  size_t booting = 0;
  size_t target = 0;
  uint64_t reserved_mb = 0;  // (ready + booting) x the standby limit
  double last_boot_ms = 0;
  std::vector<pid_t> pids;   // of the ready ones (health; memory measurements)
};

class StemCellPool {
 public:
  // make forks one stem cell and waits for its boot. cell_mb: each one's standby memory limit,
  // what it counts against the memory budget until a function takes it.
  using Maker = std::function<Result<StemCell>()>;
  StemCellPool(std::string family, size_t target, uint64_t cell_mb, Maker make);
  ~StemCellPool();  // stops the filler and destroys every stem cell

  // A ready stem cell (checked alive), or nullopt: the start is cold.
  std::optional<StemCell> Take();
  // Destroys the ready ones and pauses filling until Resume, so that the next start of the
  // runtime is cold (forklet drop-zygote). Returns how many went.
  size_t Drop();
  // After a start of the runtime: filling may go on (at the next SetAllowance).
  void Resume();
  // The memory (MB) stem cells may hold under the scheduler's budget: beyond it, ready ones go.
  // Below it, successors of the stem cells taken boot now: the scheduler sets it after every
  // start, not during one, whose CPU a boot would share.
  void SetAllowance(uint64_t mb);
  StemCellCounts Counts();
  uint64_t cell_mb() const { return cell_mb_; }

 private:
  void FillLoop();
  size_t Fits() const;  // how many stem cells the allowance admits, up to the target (under mu_)

  const std::string family_;
  const size_t target_;
  const uint64_t cell_mb_;
  Maker make_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<StemCell> ready_;                      // oldest first
  std::vector<std::unique_ptr<Instance>> retired_;  // destroyed by the filler, off the caller's path
  size_t booting_ = 0;
  uint64_t allowance_mb_ = UINT64_MAX;
  bool paused_ = false;
  bool stop_ = false;
  double last_boot_ms_ = 0;
  Clock::time_point taken_at_{};  // the last Take that gave one out
  std::string last_error_;
  std::thread filler_;
};

}  // namespace forklet::core
