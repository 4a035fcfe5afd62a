#include "runtime/core/random_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>

namespace forklet::core {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Per thread, so that ids cost no lock; every buffer is the kernel's fresh output. (A per-thread
// PRNG seeded with 32 bits, as before, repeats a seed among tens of thousands of connection
// threads often enough to have given two requests one id in a soak run.)
struct RandomBytes {
  uint8_t buf[256];
  size_t used = sizeof(buf);

  void Take(uint8_t* out, size_t n) {
    if (used + n > sizeof(buf)) Refill();
    memcpy(out, buf + used, n);
    used += n;
  }
  void Refill() {
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t r = getrandom(buf + got, sizeof(buf) - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        // Only a kernel without getrandom (before 3.17) gets here: no unique ids are possible.
        perror("forkletd: getrandom for a request id");
        abort();
      }
      got += static_cast<size_t>(r);
    }
    used = 0;
  }
};

thread_local RandomBytes random_bytes;

}  // namespace

std::string NewRequestId() {
  uint8_t b[16];
  random_bytes.Take(b, sizeof(b));
  b[6] = static_cast<uint8_t>(0x40 | (b[6] & 0x0f));  // version 4
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // RFC 4122 variant
  char out[37];
  char* p = out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = kHex[b[i] >> 4];
    *p++ = kHex[b[i] & 0x0f];
  }
  return std::string(out, 36);
}

std::string RandomHex(size_t bytes) {
  std::string out;
  out.reserve(2 * bytes);
  uint8_t b[16];
  while (bytes > 0) {
    size_t n = bytes < sizeof(b) ? bytes : sizeof(b);
    random_bytes.Take(b, n);
    for (size_t i = 0; i < n; ++i) {
      out += kHex[b[i] >> 4];
      out += kHex[b[i] & 0x0f];
    }
    bytes -= n;
  }
  return out;
}

}  // namespace forklet::core
