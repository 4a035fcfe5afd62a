// Learning a fault-ahead plan from a child's pagemap (zygote/fault_ahead.h).
#include "zygote/fault_ahead.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace forklet::zygote {
namespace {

constexpr uint64_t kPresent = 1ull << 63;
constexpr uint64_t kFileOrShared = 1ull << 61;
constexpr uint64_t kExclusive = 1ull << 56;  // mapped by this process alone (Linux 4.2)
constexpr uintptr_t kPage = 4096;

struct Mapping {
  uintptr_t start, end;
  bool readable, writable, shared, file;
};

// The mappings worth planning: readable, private, not the kernel's own ([vdso], [vvar]...).
std::vector<Mapping> ReadOwnMappings(const std::string& proc) {
  std::vector<Mapping> out;
  FILE* f = fopen((proc + "/self/maps").c_str(), "re");
  if (!f) return out;
  char line[4096];
  while (fgets(line, sizeof(line), f)) {
    uintptr_t start = 0, end = 0;
    char perms[8] = {};
    unsigned long long offset = 0;
    int path_at = 0;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %*s %*s%n", &start, &end, perms, &offset,
               &path_at) < 3)
      continue;
    const char* path = line + path_at;
    while (*path == ' ') ++path;
    Mapping m{start, end, perms[0] == 'r', perms[1] == 'w', perms[3] == 's', *path == '/'};
    if (!m.readable || m.shared) continue;
    if (path[0] == '[' && strncmp(path, "[heap]", 6) != 0 && strncmp(path, "[stack]", 7) != 0)
      continue;  // [vdso], [vvar], [vsyscall]: the kernel's
    out.push_back(m);
  }
  fclose(f);
  return out;
}

void Add(FaultAheadPlan* plan, uintptr_t page, bool write) {
  auto& r = plan->ranges;
  if (!r.empty() && r.back().write == write &&
      r.back().start + uintptr_t{r.back().pages} * kPage == page) {
    ++r.back().pages;
  } else {
    r.push_back({page, 1, write ? 1u : 0u});
  }
  ++(write ? plan->write_pages : plan->read_pages);
}

}  // namespace

int LearnFaultAhead(pid_t child, FaultAheadPlan* plan, const std::string& proc) {
  *plan = {};
  const auto mappings = ReadOwnMappings(proc);
  if (mappings.empty()) return errno ? errno : ENOENT;
  int fd = open((proc + "/" + std::to_string(child) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  constexpr size_t kBatch = 4096;  // pagemap entries per read: 16 MB of address space
  std::vector<uint64_t> entries(kBatch);
  int err = 0;
  for (const auto& m : mappings) {
    // A written page of a writable mapping, a touched page of a read-only file mapping; a page
    // of a read-only anonymous mapping (RELRO after relocation) was copied by fork: skipped.
    if (!m.writable && !m.file) continue;
    for (uintptr_t at = m.start; at < m.end && !err;) {
      const size_t n = std::min<size_t>(kBatch, (m.end - at) / kPage);
      ssize_t got = pread(fd, entries.data(), n * sizeof(uint64_t), static_cast<off_t>(at / kPage * sizeof(uint64_t)));
      if (got < 0) {
        err = errno;
        break;
      }
      const size_t count = static_cast<size_t>(got) / sizeof(uint64_t);
      if (count == 0) break;
      for (size_t i = 0; i < count; ++i) {
        const uint64_t e = entries[i];
        if (!(e & kPresent)) continue;
        const bool written = m.writable && !(e & kFileOrShared) && (e & kExclusive);
        const bool read = !m.writable && (e & kFileOrShared);
        if (!written && !read) continue;
        if (plan->write_pages + plan->read_pages >= kMaxFaultAheadPages) break;
        Add(plan, at + i * kPage, written);
      }
      at += count * kPage;
    }
    if (err) break;
  }
  close(fd);
  if (err) {
    *plan = {};
    return err;
  }
  return plan->ranges.empty() ? ENODATA : 0;
}

}  // namespace forklet::zygote
