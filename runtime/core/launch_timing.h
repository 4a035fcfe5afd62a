// Small time helpers the launcher's files share (stages in ms, human-readable ms).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "runtime/core/instance.h"

namespace forklet::core {

inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

inline std::string Ms(double ms) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f ms", ms);
  return buf;
}

}  // namespace forklet::core
