// The stem-cell pool: a filler thread keeps `target` booted stem cells, within the memory allowance.
#include "runtime/core/stem_cells.h"

#include <algorithm>
#include <chrono>

#include "runtime/log/log.h"

namespace forklet::core {
namespace {

constexpr std::chrono::milliseconds kFirstRetry{100}, kLastRetry{30000};
// A successor boots this long after a stem cell was taken: not while the start that took it and
// its first invocation run (on a small host, a Node boot beside them adds ~1.5 ms to both).
constexpr std::chrono::milliseconds kRefillDelay{10};

}  // namespace

bool UsesStemCells(const std::string& family) { return family == "nodejs"; }

StemCellPool::StemCellPool(std::string family, size_t target, uint64_t cell_mb, Maker make)
    : family_(std::move(family)), target_(target), cell_mb_(std::max<uint64_t>(cell_mb, 1)),
      make_(std::move(make)) {
  if (target_ > 0) filler_ = std::thread([this] { FillLoop(); });
}

StemCellPool::~StemCellPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (filler_.joinable()) filler_.join();
  ready_.clear();  // each Instance kills its process and removes its cgroup
  retired_.clear();
}

size_t StemCellPool::Fits() const {
  return static_cast<size_t>(std::min<uint64_t>(target_, allowance_mb_ / cell_mb_));
}

std::optional<StemCell> StemCellPool::Take() {
  std::lock_guard lock(mu_);
  std::optional<StemCell> out;
  while (!ready_.empty() && !out) {
    StemCell cell = std::move(ready_.front());
    ready_.pop_front();
    if (cell.instance->QuietWhileIdle()) {  // silent until INIT: else dead or misbehaving
      out = std::move(cell);
      taken_at_ = Clock::now();
    }
    else
      retired_.push_back(std::move(cell.instance));
  }
  if (!retired_.empty()) wake_.notify_all();
  return out;
}

void StemCellPool::Resume() {
  std::lock_guard lock(mu_);
  paused_ = false;
}

size_t StemCellPool::Drop() {
  std::lock_guard lock(mu_);
  paused_ = true;
  size_t n = ready_.size();
  for (auto& cell : ready_) retired_.push_back(std::move(cell.instance));
  ready_.clear();
  wake_.notify_all();
  return n;
}

void StemCellPool::SetAllowance(uint64_t mb) {
  std::lock_guard lock(mu_);
  allowance_mb_ = mb;
  bool changed = false;
  while (!ready_.empty() && ready_.size() + booting_ > Fits()) {
    retired_.push_back(std::move(ready_.back().instance));
    ready_.pop_back();
    changed = true;
  }
  if (changed || (!paused_ && ready_.size() + booting_ < Fits())) wake_.notify_all();
}

StemCellCounts StemCellPool::Counts() {
  std::lock_guard lock(mu_);
  StemCellCounts c{ready_.size(), booting_, target_, (ready_.size() + booting_) * cell_mb_, last_boot_ms_, {}};
  for (const auto& cell : ready_) c.pids.push_back(cell.instance->pid());
  return c;
}

void StemCellPool::FillLoop() {
  auto retry_after = kFirstRetry;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] {
      return stop_ || !retired_.empty() || (!paused_ && ready_.size() + booting_ < Fits());
    });
    if (!retired_.empty()) {
      auto retired = std::move(retired_);
      retired_.clear();
      lock.unlock();
      retired.clear();  // kill, reap, remove the cgroups
      lock.lock();
      continue;
    }
    if (stop_) return;
    if (auto ready_at = taken_at_ + kRefillDelay; Clock::now() < ready_at) {
      wake_.wait_until(lock, ready_at, [&] { return stop_; });
      continue;
    }
    ++booting_;
    lock.unlock();
    auto made = make_();
    lock.lock();
    --booting_;
    if (made.ok()) {
      retry_after = kFirstRetry;
      if (!last_error_.empty()) log::Notice(family_ + " stem cells boot again");
      last_error_.clear();
      last_boot_ms_ = made->boot_ms;
      if (stop_ || paused_ || ready_.size() >= Fits())
        retired_.push_back(std::move(made->instance));  // dropped or shrunk while it booted
      else
        ready_.push_back(std::move(made.value()));
      continue;
    }
    // Failing (the runtime is missing, no cgroup, ...): say so once, back off, try again.
    if (made.error().ToString() != last_error_) {
      last_error_ = made.error().ToString();
      log::Warning(family_ + " stem cell: " + last_error_ + " (retrying; its starts are cold meanwhile)");
    }
    wake_.wait_for(lock, retry_after, [&] { return stop_; });
    retry_after = std::min(retry_after * 2, kLastRetry);
  }
}

}  // namespace forklet::core
