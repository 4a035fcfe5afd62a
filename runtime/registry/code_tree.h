// One unpacked, read-only tree on disk (a function's code revision, a layer version, a function's
// merged layers), removed when it is retired and its last holder lets go.
#pragma once

#include <atomic>
#include <string>

namespace forklet::registry {

// Read-only once published. Shared by its owner (the registry, the layer store) while it is
// current and by every invocation starting from it and instance running it (their /var/task or
// /opt is a mount of it: removing its files would empty it). Retired when it stops being
// current; the directory, its zip (if any) and its image go when the last holder lets go
// (reference counts, not timing).
class CodeTree {
 public:
  CodeTree(std::string dir, std::string zip) : dir(std::move(dir)), zip(std::move(zip)) {}
  ~CodeTree();  // removes dir, zip and dir.erofs when retired
  CodeTree(const CodeTree&) = delete;
  CodeTree& operator=(const CodeTree&) = delete;
  void Retire() const { retired_.store(true); }

  const std::string dir;  // absolute host path
  const std::string zip;  // empty: none (a merged /opt tree)

 private:
  mutable std::atomic<bool> retired_{false};
};

}  // namespace forklet::registry
