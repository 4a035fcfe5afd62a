// Snapshot directories: STATE_DIR/snapshots/<function>/<n>, 0700, LRU-bounded.
#include "runtime/snapshot/snapshot_store.h"

#include <sys/stat.h>

#include <filesystem>

namespace forklet::snapshot {
namespace fs = std::filesystem;

namespace {
uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}
}  // namespace

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(const std::string& dir, uint64_t max_bytes) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return SysError("remove stale snapshots in " + dir, ec.value());
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + dir);
  if (chmod(dir.c_str(), 0700) != 0) return SysError("chmod " + dir);
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(dir, max_bytes));
}

std::optional<std::string> SnapshotStore::Find(const std::string& function, const std::string& generation) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(function);
  if (it == entries_.end() || it->second.generation != generation) return std::nullopt;
  it->second.used = std::chrono::steady_clock::now();
  return it->second.path;
}

Result<std::string> SnapshotStore::Prepare(const std::string& function) {
  std::lock_guard lock(mu_);
  const std::string fn_dir = dir_ + "/" + function;
  if (mkdir(fn_dir.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + fn_dir);
  const std::string path = fn_dir + "/" + std::to_string(++next_);
  if (mkdir(path.c_str(), 0700) != 0) return SysError("mkdir " + path);
  return path;
}

Status SnapshotStore::Commit(const std::string& function, const std::string& generation,
                             const std::string& prepared) {
  uint64_t bytes = DirBytes(prepared);
  std::lock_guard lock(mu_);
  if (bytes > max_bytes_) {
    std::error_code ec;
    fs::remove_all(prepared, ec);
    return MakeError("snapshot " + function, std::to_string(bytes >> 20) + " MB is more than the " +
                                                 std::to_string(max_bytes_ >> 20) + " MB bound");
  }
  auto it = entries_.find(function);
  if (it != entries_.end()) {
    std::error_code ec;
    fs::remove_all(it->second.path, ec);
  }
  entries_[function] = Entry{generation, prepared, bytes, std::chrono::steady_clock::now()};
  EvictLocked();
  return {};
}

void SnapshotStore::Discard(const std::string& prepared) {
  std::error_code ec;
  fs::remove_all(prepared, ec);
}

void SnapshotStore::Remove(const std::string& function) {
  std::lock_guard lock(mu_);
  entries_.erase(function);
  std::error_code ec;
  fs::remove_all(dir_ + "/" + function, ec);
}

std::optional<uint64_t> SnapshotStore::Size(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(function);
  if (it == entries_.end()) return std::nullopt;
  return it->second.bytes;
}

StoreUsage SnapshotStore::Usage() {
  std::lock_guard lock(mu_);
  StoreUsage u;
  u.max_bytes = max_bytes_;
  for (const auto& [fn, e] : entries_) {
    ++u.snapshots;
    u.bytes += e.bytes;
  }
  return u;
}

void SnapshotStore::EvictLocked() {
  for (;;) {
    uint64_t total = 0;
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      total += it->second.bytes;
      if (oldest == entries_.end() || it->second.used < oldest->second.used) oldest = it;
    }
    if (total <= max_bytes_ || oldest == entries_.end()) return;
    std::error_code ec;
    fs::remove_all(oldest->second.path, ec);
    entries_.erase(oldest);
  }
}

}  // namespace forklet::snapshot
