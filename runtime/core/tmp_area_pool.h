// Instances' disk-backed /tmp areas (sandbox/tmp_area.h) made ahead of time, a few of each size
// that functions on this host use: making one (a copy of the size's empty image, a loop device, a
// mount) costs ~10 ms, taking a ready one a lock. An instance's area comes back when the instance
// ends (TmpLease) and is emptied and checked for the next one, off the start path. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/tmp_area.h"

namespace forklet::core {

class TmpAreaPool;

// An instance's area: back to its pool when the lease ends (after every process of the instance
// is gone), closed if the pool is gone. Move-only.
class TmpLease {
 public:
  TmpLease() = default;
  TmpLease(sandbox::TmpArea area, std::weak_ptr<TmpAreaPool> pool) : area_(area), pool_(std::move(pool)) {}
  TmpLease(TmpLease&& o) noexcept : area_(o.area_), pool_(std::move(o.pool_)) { o.area_.mount_fd = -1; }
  TmpLease& operator=(TmpLease&& o) noexcept;
  TmpLease(const TmpLease&) = delete;
  TmpLease& operator=(const TmpLease&) = delete;
  ~TmpLease() { Release(); }

  int fd() const { return area_.mount_fd; }  // -1: none (a tmpfs /tmp)
  void Release();  // back to the pool: only once no process of its instance is left
  void Discard();  // closed, never reused

 private:
  sandbox::TmpArea area_;
  std::weak_ptr<TmpAreaPool> pool_;
};

class TmpAreaPool {
 public:
  // dir: where images are built (<state>/tmp-areas); per_size: ready areas kept of each size.
  TmpAreaPool(std::string dir, size_t per_size);
  ~TmpAreaPool();  // stops the filler and closes what was not handed out (their devices go with them)

  // Keeps areas of this size ready from now on (a function of that size was deployed). At most
  // kMaxSizes sizes are kept; the one wanted least recently makes room.
  void Want(uint64_t size_mb);
  // A ready area of size_mb (the taker owns its mount_fd), or, when none is ready, one made now on
  // the calling thread (*made_now set): a start waits ~0.1 s rather than get a /tmp that counts
  // against its memory.
  Result<sandbox::TmpArea> Take(uint64_t size_mb, bool* made_now);
  // A used area, once no process of its instance is left: emptied and kept for the next instance
  // of its size (the filler does it, before making new ones), or closed.
  void Give(sandbox::TmpArea used);

  struct Counts {
    uint64_t made = 0, recycled = 0, discarded = 0;
  };
  Counts counts();

  static constexpr size_t kMaxSizes = 8;
  static constexpr size_t kRecycledFactor = 4;  // emptied areas kept: up to this times per_size

 private:
  void Fill();
  void WantLocked(uint64_t size_mb);
  // Recycles one returned area (mu_ held, released while it works).
  void RecycleOne(std::unique_lock<std::mutex>& lock);

  const std::string dir_;
  const size_t per_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Size {
    std::deque<sandbox::TmpArea> ready;
    std::chrono::steady_clock::time_point wanted;
  };
  std::map<uint64_t, Size> sizes_;
  std::deque<sandbox::TmpArea> returned_;
  Counts counts_;
  bool stopping_ = false;
  std::thread filler_;
};

}  // namespace forklet::core
