// Zygotes that each serve one function (DESIGN.md rule 10): a fork copies what an exec chose at
// random (address layout, stack canary, pointer guard, AT_RANDOM, Python's hash secret), so a
// zygote forks the instances of one function (one revision) only. A few freshly exec'd,
// function-less "spare" zygotes per runtime family are kept ready ahead of demand; a function's
// first start binds one (a zygote start; with none ready one boots for it: a cold start), its
// later starts fork from it, and it retires after the function's last instance has gone (plus a
// linger), on a code or configuration change, a delete, or a drop. A bound zygote never serves
// another function or revision.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/instance.h"
#include "sandbox/error.h"
#include "zygote/zygote_client.h"

namespace forklet::core {

// The runtime families whose zygotes are bound to one function (all but those with stem cells,
// whose instances exec their interpreter anyway).
bool BindsZygotes(const std::string& family);

struct ZygoteBankOptions {
  size_t spares = 1;         // spare zygotes kept ready per family in use; 0: every first start is cold
  uint64_t zygote_mb = 16;   // what each zygote (spare or bound) counts against the memory budget
  // A bound zygote stays this long after its function's last instance went, so that a function
  // whose instances come and go (X-Forklet-Fresh-Instance, keep-alive ends) keeps forking.
  std::chrono::milliseconds linger{30000};
};

struct BankedZygote {
  std::string family;
  std::string function;  // empty: a spare
  pid_t pid = 0;
  double boot_ms = 0;
  uint64_t forks = 0;
  long instances = 0;     // alive instances forked from it
  uint64_t fault_ahead_pages = 0;  // its children populate them (zygote/fault_ahead.h); 0: none learned
};

class ZygoteBank {
 public:
  using Zygote = std::shared_ptr<zygote::ZygoteProcess>;
  // Boots (posix_spawn + hello) one zygote of the family; the deleter of what it returns reaps it.
  using Spawner = std::function<Result<Zygote>(const std::string& family)>;
  ZygoteBank(ZygoteBankOptions options, Spawner spawn);
  ~ZygoteBank();  // stops the filler; zygotes still referenced by instances go with them

  struct Lease {
    Zygote zygote;         // the instance holds a copy: it counts the function's live instances
    bool booted = false;   // none was ready: it booted for this start (a cold start)
    bool bound = false;    // this start bound it (the function's first start)
  };
  // The zygote of this revision of the function, binding a spare (or booting one) on its first
  // start. A binding of another revision is retired first. Concurrent first starts share a boot.
  // may_boot false (a start that has another way, the launcher's cold exec): when no zygote is
  // ready (none bound and no spare, or the one queued by such a start waits for that start to
  // end) it returns a Lease without a zygote at once, and the function's own zygote boots in the
  // background (the filler) once the start has ended, bound to it for its later starts. A boot
  // already under way is waited for, as by any start.
  Result<Lease> For(const std::string& family, const std::string& function,
                    const std::string& generation, Stages* stages, bool may_boot = true);
  // Forgets the function's zygote (changed, deleted, or its zygote died under a fork): its next
  // start binds another. The zygote itself goes once its last instance has.
  void Unbind(const std::string& function);
  // A function of this family exists: spares are kept for it from now on.
  void Prepare(const std::string& family);
  // forklet drop-zygote: the family's spares and bindings go, and no spare boots until the
  // family's next start (which is thus cold). Returns whether the family had any.
  bool Drop(const std::string& family);
  // Waits until the family has a spare ready (forkletd's warm-up), or fails with why it has none.
  Status AwaitSpare(const std::string& family, std::chrono::milliseconds timeout);
  // The memory (MB) zygotes may hold: bound ones always count; spares fill what is left.
  void SetAllowance(uint64_t mb);
  uint64_t ReservedMb();  // (spares + booting + bound) x zygote_mb
  uint64_t BoundMb();
  void CountFork(const Zygote& z);
  std::vector<BankedZygote> List();
  // The supervisor's poll: dead spares are replaced, dead bindings forgotten, bindings without
  // instances past the linger retired. Returns how many dead zygotes it found.
  // on_dead_bound runs (under the bank's lock: it must not call the bank) with the function of
  // each bound zygote found dead, before the binding goes.
  size_t Sweep(const std::function<void(const std::string&)>& on_dead_bound = {});

 private:
  struct Spare {
    Zygote zygote;
  };
  struct Binding {
    std::string family, generation;
    Zygote zygote;  // null while it boots (booting)
    bool booting = false;  // by a first start (For), or by the filler (queued first: bind_queue_)
    bool queued = false;   // in bind_queue_, its boot not begun (it waits for the start that queued it)
    Clock::time_point last_start{};
    uint64_t forks = 0;
  };
  void FillLoop();
  size_t WantedLocked(const std::string& family) const;  // spares the allowance admits for it
  void RetireLocked(Zygote z);

  const ZygoteBankOptions options_;
  Spawner spawn_;
  std::mutex mu_;
  std::condition_variable cv_;  // the filler's wake-up, and first starts waiting for a boot
  std::set<std::string> families_;  // prepared
  std::set<std::string> paused_;    // dropped: no spares until its next start
  std::map<std::string, std::deque<Spare>> spares_;
  std::map<std::string, size_t> booting_;  // spares booting, per family
  std::map<std::string, Binding> bound_;   // by function
  std::deque<std::string> bind_queue_;     // functions whose binding the filler boots (may_boot false)
  // Boots the binding of the function at the queue's head (the filler, mu_ held by lock).
  void BootQueuedBinding(std::unique_lock<std::mutex>& lock);
  std::map<pid_t, uint64_t> forks_;        // of zygotes still listed
  std::vector<Zygote> retired_;            // released by the filler, off the callers' path
  uint64_t allowance_mb_ = UINT64_MAX;
  Clock::time_point taken_at_{};
  bool start_running_ = false;  // a start bound or booted a zygote and has not ended yet
  std::string last_error_;
  bool stop_ = false;
  std::thread filler_;
};

}  // namespace forklet::core
