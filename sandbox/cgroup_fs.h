// Plain-file access to cgroupfs shared by the v1 and v2 backends: control files, pids, teardown.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox::cgroupfs {

// A number as control-file text, without allocating.
class Decimal {
 public:
  explicit Decimal(uint64_t v) : len_(std::to_chars(buf_, buf_ + sizeof(buf_), v).ptr - buf_) {}
  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[24];
  size_t len_;
};

// Writes `value` to an existing control file with one write(); returns 0 or the errno.
int WriteControl(const std::string& path, std::string_view value);
// The same as a Status whose error names the file and the value.
Status Write(const std::string& path, std::string_view value);
Result<std::string> Read(const std::string& path);
// A file holding one number; "max" reads as UINT64_MAX.
Result<uint64_t> ReadNumber(const std::string& path);
// The number after `key` in a flat keyed file (cpu.stat, memory.events, memory.oom_control);
// 0 when the key is absent (older kernels lack some keys).
Result<uint64_t> ReadKeyed(const std::string& path, std::string_view key);
// The pids listed in a cgroup.procs file.
Result<std::vector<int>> ReadPids(const std::string& procs_path);

// A control file opened once and re-read with pread (cgroupfs regenerates it at offset 0):
// for counters read on every invocation. Opened lazily; closed by Close() or the destructor.
class ControlFile {
 public:
  ControlFile() = default;
  explicit ControlFile(std::string path) : path_(std::move(path)) {}
  ~ControlFile() { Close(); }
  ControlFile(const ControlFile&) = delete;
  ControlFile& operator=(const ControlFile&) = delete;
  Result<uint64_t> ReadNumber();
  // The number after `key` (as ReadKeyed).
  Result<uint64_t> ReadKeyed(std::string_view key);
  Status Write(std::string_view value);
  void Close();

 private:
  Status Open();
  Result<std::string_view> ReadAll();
  std::string path_;
  int fd_ = -1;
  char buf_[512];
};

Status MakeDir(const std::string& dir);  // mkdir 0755; EEXIST is an error here

// Removes one empty cgroup directory, the `index`th of its set (one per hierarchy): 0, or the
// errno (ENOENT: gone already, fine; EBUSY: retried, the kernel settles an emptied cgroup
// asynchronously). Null: rmdir. The v1 backend passes libcgroup's removal (cgroup_lib.h).
using Remover = std::function<int(const std::string& dir, size_t index)>;

// SIGKILLs every process in the directories (first through cgroup.kill when `use_kill_file`),
// waits until they are gone and removes the directories; gone already counts as done.
// Bounded: gives up with an error after about two seconds.
Status KillAndRemove(const std::vector<std::string>& dirs, bool use_kill_file,
                     const Remover& remove = nullptr);

// Every cgroup below the roots (one per hierarchy, same layout), deepest first, killed and
// removed. Returns how many distinct relative paths it removed; tries all before failing.
Result<int> RemoveDescendants(const std::vector<std::string>& roots, bool use_kill_file,
                              const Remover& remove = nullptr);

}  // namespace forklet::sandbox::cgroupfs
