// What an idle warm instance costs in memory: proportional set sizes (PSS) from smaps_rollup.
#pragma once

#include <sys/types.h>

#include <string>

#include "bench/forklet_bench/daemon.h"
#include "sandbox/error.h"

namespace forklet::bench {

struct Rollup {
  double rss_mb = 0, pss_mb = 0, private_mb = 0;  // private: clean + dirty
  double anonymous_mb = 0;  // heap and stacks: what no other process can share (file pages can)
};
Result<Rollup> ReadRollup(pid_t pid);  // /proc/PID/smaps_rollup

struct InstanceMemory {
  int instances = 0;
  Rollup zygote_alone;          // the first function's own zygote, no instance forked from it alive
  Rollup zygote_with;           // the same with its idle instance alive
  Rollup instance;              // one idle instance (the median of them by PSS)
  double marginal_pss_mb = 0;   // (PSS of zygote + instances) - PSS of zygote alone, per instance
};

// Drops every idle instance, reads the zygote's PSS, starts one idle instance of each given
// function (one zygote start each), reads everyone's PSS again. Sum of PSS is the memory the
// group really holds, so the difference per instance is what one more idle instance costs.
Result<InstanceMemory> MeasureIdleInstanceMemory(DaemonUnderTest& daemon, const std::string& family,
                                                 const std::vector<std::string>& functions);

// What a pre-booted stem cell (an idle Node, no function yet) holds while it waits.
struct StemCellMemory {
  std::string family;
  Rollup cell;  // one of them (the median by PSS)
  int cells = 0;
};
Result<StemCellMemory> MeasureStemCellMemory(DaemonUnderTest& daemon, const std::string& family);

}  // namespace forklet::bench
