// The prefork pool: a filler thread keeps each recently started function's next instance forked
// ahead of demand, within the memory allowance (runtime/core/preforks.h).
#include "runtime/core/preforks.h"

#include <algorithm>
#include <chrono>

#include "runtime/log/log.h"

namespace forklet::core {
namespace {

constexpr std::chrono::milliseconds kFirstRetry{100}, kLastRetry{30000};
// A successor is forked this long after the last start: not beside the start that took one and
// its first invocation, whose CPU it would share.
constexpr std::chrono::milliseconds kRefillDelay{20};

}  // namespace

PreforkPool::PreforkPool(size_t per_function, uint64_t each_mb, Clock::duration linger, Maker make)
    : per_function_(per_function), each_mb_(std::max<uint64_t>(each_mb, 1)), linger_(linger),
      make_(std::move(make)) {
  if (per_function_ > 0) filler_ = std::thread([this] { FillLoop(); });
}

PreforkPool::~PreforkPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (filler_.joinable()) filler_.join();
  entries_.clear();  // each Instance kills its process and removes its cgroup
  retired_.clear();
}

size_t PreforkPool::TotalLocked() const {
  size_t n = 0;
  for (const auto& [key, e] : entries_) n += e.ready.size() + e.forking;
  return n;
}

void PreforkPool::RetireLocked(std::unique_ptr<Instance> instance) {
  if (!instance) return;
  retired_.push_back(std::move(instance));
  wake_.notify_all();
}

std::unique_ptr<Instance> PreforkPool::Take(const std::string& key, const std::string& generation) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  Entry& e = it->second;
  started_at_ = Clock::now();
  if (e.generation != generation) {  // another deployment's (a change not yet forgotten)
    for (auto& instance : e.ready) RetireLocked(std::move(instance));
    e.ready.clear();
    return nullptr;
  }
  while (!e.ready.empty()) {
    auto instance = std::move(e.ready.front());
    e.ready.pop_front();
    if (instance->QuietWhileIdle()) return instance;  // silent until INIT: else dead or misbehaving
    RetireLocked(std::move(instance));
  }
  return nullptr;
}

void PreforkPool::Want(const std::string& key, const registry::Deployed& fn, const std::string& generation,
                       const std::string& family) {
  if (per_function_ == 0) return;
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.key = key;
  if (e.generation != generation) {
    for (auto& instance : e.ready) RetireLocked(std::move(instance));
    e.ready.clear();
    e.fn = fn;
    e.generation = generation;
    e.family = family;
  }
  e.wanted_at = started_at_ = Clock::now();
  wake_.notify_all();
}

void PreforkPool::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  for (auto& instance : it->second.ready) RetireLocked(std::move(instance));
  if (it->second.forking == 0) {
    entries_.erase(it);
  } else {  // its fork under way is dropped when it comes back (the generation no longer matches)
    it->second.ready.clear();
    it->second.generation.clear();
    it->second.fn = {};
    it->second.wanted_at = {};
  }
}

size_t PreforkPool::Drop(const std::string& family) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (e.family != family) {
      ++it;
      continue;
    }
    n += e.ready.size();
    for (auto& instance : e.ready) RetireLocked(std::move(instance));
    e.ready.clear();
    e.generation.clear();  // nothing is forked for it until its next start wants one again
    e.wanted_at = {};
    it = e.forking == 0 ? entries_.erase(it) : std::next(it);
  }
  return n;
}

void PreforkPool::SetAllowance(uint64_t mb) {
  std::lock_guard lock(mu_);
  allowance_mb_ = mb;
  size_t fits = static_cast<size_t>(mb / each_mb_);
  // Beyond it: the oldest wanted functions' go first.
  while (TotalLocked() > fits) {
    Entry* oldest = nullptr;
    for (auto& [key, e] : entries_)
      if (!e.ready.empty() && (!oldest || e.wanted_at < oldest->wanted_at)) oldest = &e;
    if (!oldest) break;
    RetireLocked(std::move(oldest->ready.back()));
    oldest->ready.pop_back();
  }
  wake_.notify_all();
}

PreforkCounts PreforkPool::Counts() {
  std::lock_guard lock(mu_);
  PreforkCounts c;
  for (const auto& [key, e] : entries_) {
    c.ready += e.ready.size();
    c.forking += e.forking;
    if (!e.ready.empty() || !e.generation.empty()) ++c.functions;
    for (const auto& instance : e.ready) c.pids.push_back(instance->pid());
  }
  c.reserved_mb = (c.ready + c.forking) * each_mb_;
  c.last_fork_ms = last_fork_ms_;
  return c;
}

PreforkPool::Entry* PreforkPool::NeedingLocked(Clock::time_point now, Clock::time_point* next_at) {
  *next_at = Clock::time_point::max();
  // Expired: no start of the function for linger_. Its ones go, so that its zygote can retire.
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (e.generation.empty() || now - e.wanted_at < linger_) {
      if (!e.generation.empty()) *next_at = std::min(*next_at, e.wanted_at + linger_);
      ++it;
      continue;
    }
    for (auto& instance : e.ready) RetireLocked(std::move(instance));
    e.ready.clear();
    it = e.forking == 0 ? entries_.erase(it) : std::next(it);
  }
  if (TotalLocked() >= allowance_mb_ / each_mb_) return nullptr;
  Entry* needing = nullptr;
  for (auto& [key, e] : entries_)
    if (!e.generation.empty() && e.ready.size() + e.forking < per_function_ &&
        (!needing || e.wanted_at > needing->wanted_at))
      needing = &e;  // the most recently started function first
  if (!needing) return nullptr;
  if (auto ready_at = started_at_ + kRefillDelay; now < ready_at) {
    *next_at = std::min(*next_at, ready_at);
    return nullptr;
  }
  return needing;
}

void PreforkPool::FillLoop() {
  auto retry_after = kFirstRetry;
  std::unique_lock lock(mu_);
  for (;;) {
    if (!retired_.empty()) {
      auto retired = std::move(retired_);
      retired_.clear();
      lock.unlock();
      retired.clear();  // kill, reap, remove the cgroups
      lock.lock();
      continue;
    }
    if (stop_) return;
    Clock::time_point next_at;
    Entry* e = NeedingLocked(Clock::now(), &next_at);
    if (!e) {
      if (!retired_.empty()) continue;
      if (next_at == Clock::time_point::max())
        wake_.wait(lock);
      else
        wake_.wait_until(lock, next_at);
      continue;
    }
    const std::string generation = e->generation;
    const registry::Deployed fn = e->fn;
    const std::string key = e->key;
    ++e->forking;
    lock.unlock();
    auto t0 = Clock::now();
    auto made = make_(fn);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    lock.lock();
    auto it = entries_.find(key);
    if (it != entries_.end()) --it->second.forking;
    if (made.ok()) {
      retry_after = kFirstRetry;
      if (!last_error_.empty()) log::Notice("preforked instances are made again");
      last_error_.clear();
      last_fork_ms_ = ms;
      bool keep = !stop_ && it != entries_.end() && it->second.generation == generation &&
                  it->second.ready.size() < per_function_ && TotalLocked() < allowance_mb_ / each_mb_;
      if (keep)
        it->second.ready.push_back(std::move(made.value()));
      else
        RetireLocked(std::move(made.value()));  // forgotten, dropped or shrunk meanwhile
      if (it != entries_.end() && it->second.generation.empty() && it->second.forking == 0 &&
          it->second.ready.empty())
        entries_.erase(it);
      continue;
    }
    if (it != entries_.end() && it->second.generation.empty() && it->second.forking == 0) entries_.erase(it);
    // Failing (no cgroup, the zygote cannot fork, ...): say so once, back off, try again.
    if (made.error().ToString() != last_error_) {
      last_error_ = made.error().ToString();
      log::Warning("preforked instance of " + key + ": " + last_error_ + " (retrying; its starts fork on demand)");
    }
    wake_.wait_for(lock, retry_after, [&] { return stop_; });
    retry_after = std::min(retry_after * 2, kLastRetry);
  }
}

}  // namespace forklet::core
