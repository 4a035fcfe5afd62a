// Instances' disk-backed /tmp areas (sandbox/tmp_area.h) made ahead of time, a few of each size
// that functions on this host use: making one (mkfs.ext4, loop device, mount) costs ~0.1 s, taking
// a ready one a lock. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/tmp_area.h"

namespace forklet::core {

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

  static constexpr size_t kMaxSizes = 8;

 private:
  void Fill();
  void WantLocked(uint64_t size_mb);

  const std::string dir_;
  const size_t per_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Size {
    std::deque<sandbox::TmpArea> ready;
    std::chrono::steady_clock::time_point wanted;
  };
  std::map<uint64_t, Size> sizes_;
  bool stopping_ = false;
  std::thread filler_;
};

}  // namespace forklet::core
