// The filler thread empties the areas instances gave back and makes the ones the pool still lacks,
// one at a time, the size wanted most recently first; a failure to make one is logged and retried
// after a pause (a full disk must not spin a core), an area that cannot be emptied is discarded.
#include "runtime/core/tmp_area_pool.h"

#include <unistd.h>

#include "runtime/log/log.h"

namespace forklet::core {

TmpLease& TmpLease::operator=(TmpLease&& o) noexcept {
  if (this != &o) {
    Release();
    area_ = o.area_;
    pool_ = std::move(o.pool_);
    o.area_.mount_fd = -1;
  }
  return *this;
}

void TmpLease::Discard() {
  if (area_.mount_fd >= 0) close(area_.mount_fd);
  area_.mount_fd = -1;
}

void TmpLease::Release() {
  if (area_.mount_fd < 0) return;
  if (auto pool = pool_.lock())
    pool->Give(area_);
  else
    close(area_.mount_fd);
  area_.mount_fd = -1;
}

TmpAreaPool::TmpAreaPool(std::string dir, size_t per_size) : dir_(std::move(dir)), per_size_(per_size) {
  if (per_size_ > 0) filler_ = std::thread([this] { Fill(); });
}

TmpAreaPool::~TmpAreaPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (filler_.joinable()) filler_.join();
  for (auto& [size, s] : sizes_)
    for (auto& area : s.ready) close(area.mount_fd);
  for (auto& area : returned_) close(area.mount_fd);
  sandbox::RemoveTmpAreaLeftovers(dir_);  // the templates
}

void TmpAreaPool::WantLocked(uint64_t size_mb) {
  sizes_[size_mb].wanted = std::chrono::steady_clock::now();
  while (sizes_.size() > kMaxSizes) {
    auto oldest = sizes_.begin();
    for (auto it = sizes_.begin(); it != sizes_.end(); ++it)
      if (it->second.wanted < oldest->second.wanted) oldest = it;
    for (auto& area : oldest->second.ready) close(area.mount_fd);
    sizes_.erase(oldest);
  }
}

void TmpAreaPool::Want(uint64_t size_mb) {
  {
    std::lock_guard lock(mu_);
    WantLocked(size_mb);
  }
  cv_.notify_all();
}

Result<sandbox::TmpArea> TmpAreaPool::Take(uint64_t size_mb, bool* made_now) {
  {
    std::lock_guard lock(mu_);
    WantLocked(size_mb);
    auto& ready = sizes_[size_mb].ready;
    if (!ready.empty()) {
      sandbox::TmpArea area = ready.front();
      ready.pop_front();
      cv_.notify_all();
      return area;
    }
  }
  cv_.notify_all();
  if (made_now) *made_now = true;
  auto area = sandbox::MakeTmpArea(dir_, size_mb);
  if (area) {
    std::lock_guard lock(mu_);
    ++counts_.made;
  }
  return area;
}

void TmpAreaPool::Give(sandbox::TmpArea used) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      returned_.push_back(used);
      used.mount_fd = -1;
    }
  }
  if (used.mount_fd >= 0) close(used.mount_fd);
  cv_.notify_all();
}

TmpAreaPool::Counts TmpAreaPool::counts() {
  std::lock_guard lock(mu_);
  return counts_;
}

void TmpAreaPool::RecycleOne(std::unique_lock<std::mutex>& lock) {
  sandbox::TmpArea used = returned_.front();
  returned_.pop_front();
  auto it = sizes_.find(used.size_mb);
  // Kept beyond the pool's size too (up to kRecycledFactor times it): a churn of instances gives
  // back as many as it takes, but only after their instances end, while the filler tops the pool
  // up meanwhile; discarding what comes back then would make and discard an area per instance.
  if (it == sizes_.end() || it->second.ready.size() >= kRecycledFactor * per_size_) {
    ++counts_.discarded;
    lock.unlock();
    close(used.mount_fd);
    lock.lock();
    return;
  }
  lock.unlock();
  auto fresh = sandbox::RecycleTmpArea(used);
  close(used.mount_fd);  // the instance's mount; the area lives on in fresh's
  if (!fresh) log::Info("tmp area " + used.loop + " discarded: " + fresh.error().ToString());
  lock.lock();
  if (!fresh) {
    ++counts_.discarded;
    return;
  }
  it = sizes_.find(used.size_mb);
  if (stopping_ || it == sizes_.end()) {
    ++counts_.discarded;
    close(fresh->mount_fd);
    return;
  }
  ++counts_.recycled;
  it->second.ready.push_back(*fresh);
}

void TmpAreaPool::Fill() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!returned_.empty()) {
      RecycleOne(lock);
      continue;
    }
    // The size wanted most recently among those short of areas.
    uint64_t size = 0;
    auto newest = std::chrono::steady_clock::time_point::min();
    for (auto& [mb, s] : sizes_)
      if (s.ready.size() < per_size_ && s.wanted > newest) size = mb, newest = s.wanted;
    if (size == 0) {
      cv_.wait(lock);
      continue;
    }
    lock.unlock();
    auto area = sandbox::MakeTmpArea(dir_, size);
    lock.lock();
    if (!area) {
      log::Warning("tmp area pool: " + area.error().ToString() + " (retrying in 1 s)");
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      continue;
    }
    auto it = sizes_.find(size);
    if (stopping_ || it == sizes_.end()) {  // the size was dropped while it was made
      close(area->mount_fd);
      continue;
    }
    ++counts_.made;
    it->second.ready.push_back(*area);
  }
}

}  // namespace forklet::core
