// The zygote bank: spares kept ready per family by a filler thread, one binding per function.
#include "runtime/core/zygote_bank.h"

#include <algorithm>

#include "runtime/core/launch_timing.h"
#include "runtime/core/stem_cells.h"
#include "runtime/log/log.h"

namespace forklet::core {
namespace {

constexpr std::chrono::milliseconds kFirstRetry{100}, kLastRetry{30000};
// A spare boots this long after the start that bound one has ended (the scheduler's SetAllowance
// after it): not while that start runs, nor at once beside its first invocation (a Python zygote's boot is ~40 ms
// of CPU that a small host would share with them). kRefillHold bounds the wait for that end.
constexpr std::chrono::milliseconds kRefillDelay{50};
constexpr std::chrono::milliseconds kRefillHold{2000};

}  // namespace

bool BindsZygotes(const std::string& family) { return !UsesStemCells(family); }

ZygoteBank::ZygoteBank(ZygoteBankOptions options, Spawner spawn)
    : options_(std::move(options)), spawn_(std::move(spawn)) {
  filler_ = std::thread([this] { FillLoop(); });
}

ZygoteBank::~ZygoteBank() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  filler_.join();
  spares_.clear();
  bound_.clear();
  retired_.clear();
}

void ZygoteBank::RetireLocked(Zygote z) {
  if (!z) return;
  forks_.erase(z->pid());
  retired_.push_back(std::move(z));
  cv_.notify_all();
}

size_t ZygoteBank::WantedLocked(const std::string& family) const {
  if (!families_.count(family) || paused_.count(family)) return 0;
  uint64_t bound = bound_.size() * options_.zygote_mb;
  uint64_t left = allowance_mb_ > bound ? allowance_mb_ - bound : 0;
  size_t fits = static_cast<size_t>(left / std::max<uint64_t>(options_.zygote_mb, 1));
  // Families share what is left in name order; each wants options_.spares.
  for (const auto& f : families_) {
    if (paused_.count(f)) continue;
    size_t want = std::min(options_.spares, fits);
    if (f == family) return want;
    auto s = spares_.find(f);
    auto b = booting_.find(f);
    size_t held = (s == spares_.end() ? 0 : s->second.size()) + (b == booting_.end() ? 0 : b->second);
    fits -= std::min(fits, std::min(held, want));
  }
  return 0;
}

Result<ZygoteBank::Lease> ZygoteBank::For(const std::string& family, const std::string& function,
                                         const std::string& generation, Stages* stages, bool may_boot) {
  std::unique_lock lock(mu_);
  families_.insert(family);
  // After a drop, spares boot again once this (cold) start is done, not beside it.
  struct ResumeAfter {
    ZygoteBank* bank;
    const std::string& family;
    ~ResumeAfter() {  // runs with mu_ held (declared after the lock)
      if (bank->paused_.erase(family)) bank->cv_.notify_all();
    }
  } resume_after{this, family};
  for (;;) {
    auto it = bound_.find(function);
    if (it == bound_.end()) break;
    Binding& b = it->second;
    if (b.booting && b.queued && may_boot) {  // queued for the filler: this start boots it now
      bind_queue_.erase(std::remove(bind_queue_.begin(), bind_queue_.end(), function), bind_queue_.end());
      bound_.erase(it);
      break;
    }
    if (b.booting) {  // a concurrent first start (or the filler) boots it; share it
      if (!may_boot && b.queued && start_running_) return Lease{};  // its boot waits for a start
      cv_.wait(lock);
      continue;
    }
    if (b.generation != generation || b.family != family) {  // never carried to another revision
      RetireLocked(std::move(b.zygote));
      bound_.erase(it);
      break;
    }
    b.last_start = Clock::now();
    return Lease{b.zygote, false, false};
  }
  // The function's first start: a spare, checked alive (nobody else uses it, so no wait).
  auto& spares = spares_[family];
  while (!spares.empty()) {
    Zygote z = std::move(spares.front().zygote);
    spares.pop_front();
    if (!z->alive()) {
      RetireLocked(std::move(z));
      continue;
    }
    Binding& b = bound_[function];
    b = Binding{family, generation, z, false, false, Clock::now(), 0};
    stages->emplace_back("zygote_bind", 0.0);  // says this start bound a spare
    forks_[z->pid()];
    taken_at_ = Clock::now();
    start_running_ = true;  // its successor boots after this start (SetAllowance)
    return Lease{std::move(z), false, true};
  }
  // None ready: one boots for this start (cold). Others of the function wait for it.
  bound_[function] = Binding{family, generation, nullptr, true, !may_boot, Clock::now(), 0};
  if (!may_boot) {
    // The filler boots it as soon as this start has ended (no refill delay: it is the function's).
    // Not beside it: two interpreters booting at once on this 2-core VM took 36-39 ms against 26
    // for one (first-touch page faults do not scale across cores here).
    bind_queue_.push_back(function);
    taken_at_ = Clock::now();
    start_running_ = true;
    cv_.notify_all();
    return Lease{};
  }
  lock.unlock();
  auto t0 = Clock::now();
  auto spawned = spawn_(family);
  double boot_ms = MsSince(t0);
  lock.lock();
  taken_at_ = Clock::now();
  start_running_ = true;
  cv_.notify_all();
  auto it = bound_.find(function);
  bool still_ours = it != bound_.end() && it->second.booting && it->second.generation == generation;
  if (!spawned) {
    if (still_ours) bound_.erase(it);
    return spawned.error();
  }
  stages->emplace_back("zygote_boot", boot_ms);
  Zygote z = std::move(spawned.value());
  if (still_ours) {
    it->second.zygote = z;
    it->second.booting = false;
    forks_[z->pid()];
  } else if (it != bound_.end() && it->second.booting) {
    bound_.erase(it);  // unbound or dropped while it booted: it serves this start only
  }
  return Lease{std::move(z), true, true};
}

void ZygoteBank::Unbind(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = bound_.find(function);
  if (it == bound_.end()) return;
  if (it->second.booting) {
    it->second.generation.clear();  // the booting start finds it no longer its own
    return;
  }
  RetireLocked(std::move(it->second.zygote));
  bound_.erase(it);
}

void ZygoteBank::Prepare(const std::string& family) {
  std::lock_guard lock(mu_);
  if (families_.insert(family).second) cv_.notify_all();
}

bool ZygoteBank::Drop(const std::string& family) {
  std::lock_guard lock(mu_);
  bool had = families_.count(family) > 0;
  paused_.insert(family);
  for (auto& s : spares_[family]) RetireLocked(std::move(s.zygote));
  spares_[family].clear();
  for (auto it = bound_.begin(); it != bound_.end();) {
    if (it->second.family != family) {
      ++it;
    } else if (it->second.booting) {
      it->second.generation.clear();
      ++it;
    } else {
      RetireLocked(std::move(it->second.zygote));
      it = bound_.erase(it);
    }
  }
  return had;
}

Status ZygoteBank::AwaitSpare(const std::string& family, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  families_.insert(family);
  cv_.notify_all();
  bool ready = cv_.wait_for(lock, timeout, [&] {
    return !spares_[family].empty() || !last_error_.empty() || WantedLocked(family) == 0;
  });
  if (!spares_[family].empty() || WantedLocked(family) == 0) return {};
  return MakeError("zygote " + family, ready ? last_error_ : "no spare zygote booted in time");
}

void ZygoteBank::SetAllowance(uint64_t mb) {
  std::lock_guard lock(mu_);
  allowance_mb_ = mb;
  if (start_running_) {  // the scheduler calls this after every start: refills may follow
    start_running_ = false;
    taken_at_ = Clock::now();
  }
  for (auto& [family, spares] : spares_) {
    while (!spares.empty() && spares.size() + booting_[family] > WantedLocked(family)) {
      RetireLocked(std::move(spares.back().zygote));
      spares.pop_back();
    }
  }
  cv_.notify_all();
}

uint64_t ZygoteBank::ReservedMb() {
  std::lock_guard lock(mu_);
  size_t n = bound_.size();
  for (auto& [family, spares] : spares_) n += spares.size();
  for (auto& [family, b] : booting_) n += b;
  return n * options_.zygote_mb;
}

uint64_t ZygoteBank::BoundMb() {
  std::lock_guard lock(mu_);
  return bound_.size() * options_.zygote_mb;
}

void ZygoteBank::CountFork(const Zygote& z) {
  std::lock_guard lock(mu_);
  auto it = forks_.find(z->pid());
  if (it != forks_.end()) ++it->second;
}

std::vector<BankedZygote> ZygoteBank::List() {
  std::lock_guard lock(mu_);
  std::vector<BankedZygote> out;
  for (auto& [family, spares] : spares_)
    for (auto& s : spares) out.push_back({family, "", s.zygote->pid(), s.zygote->boot_us() / 1000.0, 0, 0});
  for (auto& [function, b] : bound_) {
    if (!b.zygote) continue;
    out.push_back({b.family, function, b.zygote->pid(), b.zygote->boot_us() / 1000.0,
                   forks_[b.zygote->pid()], b.zygote.use_count() - 1, b.zygote->fault_ahead_pages()});
  }
  return out;
}

size_t ZygoteBank::Sweep(const std::function<void(const std::string&)>& on_dead_bound) {
  std::vector<std::pair<std::string, Zygote>> spares, bound;
  {
    std::lock_guard lock(mu_);
    for (auto& [family, q] : spares_)
      for (auto& s : q) spares.emplace_back(family, s.zygote);
    for (auto& [function, b] : bound_)
      if (b.zygote) bound.emplace_back(function, b.zygote);
  }
  // alive() may wait for a fork under way: outside the bank's lock.
  std::vector<Zygote> dead;
  for (auto& [name, z] : spares)
    if (!z->alive()) dead.push_back(z);
  for (auto& [name, z] : bound)
    if (!z->alive()) dead.push_back(z);
  // Reaped now, not when the last instance forked from it ends: no zombie meanwhile.
  for (auto& z : dead) z->ReapDead();
  spares.clear();
  bound.clear();
  std::lock_guard lock(mu_);
  auto is_dead = [&](const Zygote& z) { return std::find(dead.begin(), dead.end(), z) != dead.end(); };
  for (auto& [family, q] : spares_) {
    for (auto it = q.begin(); it != q.end();) {
      if (!is_dead(it->zygote)) {
        ++it;
        continue;
      }
      log::Notice("spare zygote " + family + " (pid " + std::to_string(it->zygote->pid()) +
                  ") died; a new one boots");
      RetireLocked(std::move(it->zygote));
      it = q.erase(it);
    }
  }
  auto now = Clock::now();
  for (auto it = bound_.begin(); it != bound_.end();) {
    Binding& b = it->second;
    if (!b.zygote) {
      ++it;
      continue;
    }
    if (is_dead(b.zygote)) {
      log::Notice("zygote " + b.family + " of " + it->first + " (pid " + std::to_string(b.zygote->pid()) +
                  ") died; its next start binds another");
      if (on_dead_bound) on_dead_bound(it->first);
    } else if (b.zygote.use_count() > 1) {  // instances (or a start) hold it
      b.last_start = now;
      ++it;
      continue;
    } else if (now - b.last_start < options_.linger) {
      ++it;
      continue;
    }
    RetireLocked(std::move(b.zygote));
    it = bound_.erase(it);
  }
  size_t n = dead.size();
  dead.clear();  // the bank's references went to retired_: the filler reaps them
  return n;
}

void ZygoteBank::FillLoop() {
  auto retry_after = kFirstRetry;
  std::unique_lock lock(mu_);
  auto needing = [&]() -> std::string {
    for (const auto& f : families_)
      if (spares_[f].size() + booting_[f] < WantedLocked(f)) return f;
    return "";
  };
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !retired_.empty() || !bind_queue_.empty() || !needing().empty(); });
    if (!retired_.empty()) {
      auto retired = std::move(retired_);
      retired_.clear();
      lock.unlock();
      retired.clear();  // close, reap (those no instance holds any more)
      lock.lock();
      continue;
    }
    if (stop_) return;
    if (!bind_queue_.empty()) {
      if (auto hold = taken_at_ + kRefillHold; start_running_ && Clock::now() < hold) {
        cv_.wait_until(lock, hold);  // woken early by SetAllowance (the start ended) or stop
        continue;
      }
      BootQueuedBinding(lock);
      continue;
    }
    if (needing().empty()) continue;
    if (auto ready_at = taken_at_ + (start_running_ ? kRefillHold : kRefillDelay); Clock::now() < ready_at) {
      cv_.wait_until(lock, ready_at);  // woken early by SetAllowance (the start ended) or stop
      continue;
    }
    std::string family = needing();
    ++booting_[family];
    lock.unlock();
    auto made = spawn_(family);
    lock.lock();
    --booting_[family];
    if (made.ok()) {
      retry_after = kFirstRetry;
      if (!last_error_.empty()) log::Notice("spare zygotes boot again");
      last_error_.clear();
      if (stop_ || spares_[family].size() >= WantedLocked(family))
        RetireLocked(std::move(made.value()));  // dropped or shrunk while it booted
      else
        spares_[family].push_back(Spare{std::move(made.value())});
      cv_.notify_all();
      continue;
    }
    if (made.error().ToString() != last_error_) {
      last_error_ = made.error().ToString();
      log::Warning("spare zygote " + family + ": " + last_error_ + " (retrying; first starts are cold meanwhile)");
    }
    cv_.notify_all();
    cv_.wait_for(lock, retry_after, [&] { return stop_; });
    retry_after = std::min(retry_after * 2, kLastRetry);
  }
}

void ZygoteBank::BootQueuedBinding(std::unique_lock<std::mutex>& lock) {
  const std::string function = std::move(bind_queue_.front());
  bind_queue_.pop_front();
  auto it = bound_.find(function);
  if (it == bound_.end() || !it->second.booting || it->second.zygote) return;
  it->second.queued = false;  // from now on starts wait for it
  const std::string family = it->second.family, generation = it->second.generation;
  if (generation.empty()) {  // unbound or dropped before its boot began
    bound_.erase(it);
    cv_.notify_all();
    return;
  }
  lock.unlock();
  auto made = spawn_(family);
  lock.lock();
  it = bound_.find(function);
  const bool ours = it != bound_.end() && it->second.booting && !it->second.zygote &&
                    it->second.generation == generation;
  if (made.ok() && ours && !stop_) {
    Binding& b = it->second;
    b.zygote = std::move(made.value());
    b.booting = false;
    b.last_start = Clock::now();
    forks_[b.zygote->pid()];
  } else {
    if (it != bound_.end() && it->second.booting && !it->second.zygote) bound_.erase(it);  // others boot anew
    if (made.ok()) RetireLocked(std::move(made.value()));  // unbound, changed or dropped while it booted
    else log::Warning("zygote " + family + " of " + function + ": " + made.error().ToString() +
                      " (its next start boots one)");
  }
  cv_.notify_all();
}

}  // namespace forklet::core
