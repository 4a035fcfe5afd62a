// Each code revision's /var/task (and a function's merged layers, its /opt) as a filesystem of its
// own: its EROFS image, built and mounted once (ahead of demand when a function is created or updated, else at its first start), cloned
// for each instance. Where images are not available (no mkfs.erofs, a kernel before 6.12), the
// unpacked directory is bind-mounted as before, and the daemon says so once at start.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/registry/registry.h"
#include "sandbox/error.h"

namespace forklet::core {

class CodeMounts {
 public:
  explicit CodeMounts(bool images);
  ~CodeMounts();
  CodeMounts(const CodeMounts&) = delete;
  CodeMounts& operator=(const CodeMounts&) = delete;

  // A detached, read-only mount of fn's code for one new instance; the caller owns the fd.
  Result<int> ForInstance(const registry::Deployed& fn);
  // The same for fn's layers (Deployed::opt), for /opt; -1 when it has none.
  Result<int> LayersForInstance(const registry::Deployed& fn);
  // Builds and mounts fn's images (code, layers) in the background, so that its first start does not.
  void Prepare(const registry::Deployed& fn);

  bool images() const { return images_; }

 private:
  struct Entry {
    std::weak_ptr<const registry::CodeTree> tree;  // expired: the revision is gone
    int mnt = -1;
  };
  // The image mount of a tree, made if it is not there yet (owned by by_dir_).
  Result<int> ImageMount(const std::shared_ptr<const registry::CodeTree>& tree);
  Result<int> TreeForInstance(const std::shared_ptr<const registry::CodeTree>& tree, const std::string& what);
  void SweepLocked();  // closes the mounts of revisions that are gone
  void PrepareLoop();

  const bool images_;
  std::mutex mu_;
  std::map<std::string, Entry> by_dir_;  // code dir -> its image mount
  std::deque<registry::Deployed> pending_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread preparer_;
};

}  // namespace forklet::core
