// Fault-ahead: which of a zygote's pages its children touch, learned from one child, so that the
// next ones populate them in a few madvise calls instead of taking a page fault for each.
//
// A forked child starts with the zygote's memory shared copy-on-write and, for file mappings
// without private pages (the interpreter's code), with no page table entries at all: every page
// it writes is copied on a fault, every code page it runs is mapped on a fault. A Python instance
// takes ~565 of them between its fork and its first answer, and on a VM whose page faults cost
// ~11 us each (docs/python-start.md) that is 6 ms; MADV_POPULATE_WRITE/READ does the same work
// for ~0.5 us a page.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/child_setup.h"

namespace forklet::zygote {

struct FaultAheadPlan {
  std::vector<sandbox::FaultAheadRange> ranges;  // page-aligned, ascending, coalesced
  uint64_t write_pages = 0;
  uint64_t read_pages = 0;
};

// The most pages a plan holds (a child populates them all, charged to its own cgroup).
constexpr uint64_t kMaxFaultAheadPages = 16384;  // 64 MB

// Reads this process's mappings (/proc/self/maps) and, through /proc/<pid>/pagemap, which of
// their pages `child` (forked from this process) has touched: in a private writable mapping, a
// page present, anonymous and mapped by the child alone (its own copy or a page it allocated) is
// one to write; in a private read-only file mapping (code, constants), a present page is one to
// read. Shared mappings, the vDSO and pages outside this process's mappings are left out. `proc`
// is where procfs is mounted. Fails with errno (ESRCH: the child is gone; EPERM) or ENODATA
// when nothing was found.
int LearnFaultAhead(pid_t child, FaultAheadPlan* plan, const std::string& proc = "/proc");

}  // namespace forklet::zygote
