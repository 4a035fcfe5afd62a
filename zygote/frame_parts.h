// One channel frame (zygote/channel.h) as the three parts a writev sends: header, meta and
// payload, and where a partial write left off. Both ends of the channel write frames with it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string_view>

#include "zygote/channel.h"

namespace forklet::zygote {

class FrameParts {
 public:
  FrameParts(uint32_t type, std::string_view meta, std::string_view payload)
      : header_{type, static_cast<uint32_t>(meta.size()), static_cast<uint32_t>(payload.size())},
        parts_{{&header_, sizeof(header_)},
               {const_cast<char*>(meta.data()), meta.size()},
               {const_cast<char*>(payload.data()), payload.size()}} {
    Advance(0);  // past empty parts
  }
  FrameParts(const FrameParts&) = delete;  // parts_ points into header_
  FrameParts& operator=(const FrameParts&) = delete;

  bool done() const { return next_ == kParts; }
  const iovec* next() const { return parts_ + next_; }  // what is left, for writev/sendmsg
  int count() const { return kParts - next_; }
  // After a write of `written` bytes from next().
  void Advance(size_t written) {
    while (next_ < kParts && written >= parts_[next_].iov_len) written -= parts_[next_++].iov_len;
    if (next_ < kParts) {
      parts_[next_].iov_base = static_cast<char*>(parts_[next_].iov_base) + written;
      parts_[next_].iov_len -= written;
    }
  }

 private:
  static constexpr int kParts = 3;
  FrameHeader header_;
  iovec parts_[kParts];
  int next_ = 0;
};

}  // namespace forklet::zygote
