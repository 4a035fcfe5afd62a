// The filler thread makes the areas the pool lacks, one at a time, the size wanted most recently
// first; a failure is logged and retried after a pause (a full disk must not spin a core).
#include "runtime/core/tmp_area_pool.h"

#include <unistd.h>

#include "runtime/log/log.h"

namespace forklet::core {

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
  return sandbox::MakeTmpArea(dir_, size_mb);
}

void TmpAreaPool::Fill() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
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
    it->second.ready.push_back(*area);
  }
}

}  // namespace forklet::core
