// The snapshots on disk: one per function and deployment, readable by the daemon only, bounded
// in total size (least recently used go first). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sandbox/error.h"

namespace forklet::snapshot {

struct StoreUsage {
  size_t snapshots = 0;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
};

class SnapshotStore {
 public:
  // `dir` is made 0700 and emptied: snapshots of a previous run are not trusted.
  static Result<std::unique_ptr<SnapshotStore>> Open(const std::string& dir, uint64_t max_bytes);

  // The images of the function's snapshot of this deployment, if there is one (marks it used).
  std::optional<std::string> Find(const std::string& function, const std::string& generation);
  // An empty private directory to dump into; Commit or Discard it.
  Result<std::string> Prepare(const std::string& function);
  // Makes a prepared dump the function's snapshot of this deployment (replacing any other), then
  // evicts the least recently used snapshots past the bound. Fails, discarding it, when it alone
  // is larger than the bound.
  Status Commit(const std::string& function, const std::string& generation, const std::string& prepared);
  void Discard(const std::string& prepared);
  // The function changed or is gone: its snapshots go.
  void Remove(const std::string& function);
  std::optional<uint64_t> Size(const std::string& function);

  StoreUsage Usage();
  const std::string& dir() const { return dir_; }

 private:
  SnapshotStore(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  struct Entry {
    std::string generation;
    std::string path;
    uint64_t bytes = 0;
    std::chrono::steady_clock::time_point used;
  };
  void EvictLocked();

  const std::string dir_;
  const uint64_t max_bytes_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // by function
  uint64_t next_ = 0;
};

}  // namespace forklet::snapshot
