// Each code revision's /var/task as a filesystem of its own (runtime/core/code_mounts.h).
#include "runtime/core/code_mounts.h"

#include <sys/mount.h>
#include <unistd.h>

#include "runtime/log/log.h"
#include "sandbox/code_image.h"
#include "sandbox/template_root.h"

namespace forklet::core {
namespace {
// A revision whose image could not be made: said once, then its starts bind the directory.
constexpr const char* kFailedBefore = "failed before for this revision";
}  // namespace

CodeMounts::CodeMounts(bool images) : images_(images) {
  if (images_) preparer_ = std::thread([this] { PrepareLoop(); });
}

CodeMounts::~CodeMounts() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
  for (auto& [dir, e] : by_dir_)
    if (e.mnt >= 0) close(e.mnt);
}

void CodeMounts::SweepLocked() {
  for (auto it = by_dir_.begin(); it != by_dir_.end();) {
    if (it->second.tree.expired()) {
      if (it->second.mnt >= 0) close(it->second.mnt);
      it = by_dir_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<int> CodeMounts::ImageMount(const std::shared_ptr<const registry::CodeTree>& tree) {
  const std::string& dir = tree->dir;
  {
    std::lock_guard lock(mu_);
    auto it = by_dir_.find(dir);
    if (it != by_dir_.end() && !it->second.tree.expired()) {
      if (it->second.mnt < 0) return MakeError("code image", kFailedBefore);
      return it->second.mnt;
    }
  }
  // Built and mounted outside the lock (other functions' starts do not wait for it); two
  // builders of one revision write separate temporary files and the same image.
  // Beside the tree: the registry removes it with the tree, and at start with what no record names.
  // A revision whose image fails is remembered (mnt -1): its later starts bind the directory at
  // once instead of running mkfs.erofs again on every start.
  const std::string image = dir + ".erofs";
  Result<int> mnt = MakeError("code image", "not built");
  if (access(image.c_str(), R_OK) != 0) {
    if (auto s = sandbox::BuildCodeImage(dir, image); !s) mnt = s.error();
    else mnt = sandbox::MountCodeImage(image);
  } else {
    mnt = sandbox::MountCodeImage(image);
  }
  std::lock_guard lock(mu_);
  auto it = by_dir_.find(dir);
  if (it != by_dir_.end() && !it->second.tree.expired() && it->second.mnt >= 0) {
    if (mnt) close(*mnt);
    return it->second.mnt;
  }
  SweepLocked();
  by_dir_[dir] = Entry{tree, mnt ? *mnt : -1};
  return mnt;
}

Result<int> CodeMounts::ForInstance(const registry::Deployed& fn) {
  if (!fn.code) return sandbox::DetachedReadOnlyTree(fn.code_dir);
  return TreeForInstance(fn.code, "code image of " + fn.config.name);
}

Result<int> CodeMounts::LayersForInstance(const registry::Deployed& fn) {
  if (!fn.opt) return -1;
  return TreeForInstance(fn.opt, "layers image of " + fn.config.name);
}

Result<int> CodeMounts::TreeForInstance(const std::shared_ptr<const registry::CodeTree>& tree,
                                        const std::string& what) {
  if (images_) {
    auto mnt = ImageMount(tree);
    if (mnt) {
      // The entry's mount stays open while its revision lives (closed only by SweepLocked, when
      // the tree has expired, which it cannot while fn holds it).
      int fd = open_tree(*mnt, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
      if (fd >= 0) return fd;
      log::Warning(what + ": clone: " + strerror(errno) + "; its directory is mounted instead");
    } else if (mnt.error().message != kFailedBefore) {
      log::Warning(what + ": " + mnt.error().ToString() + "; its directory is mounted instead");
    }
  }
  return sandbox::DetachedReadOnlyTree(tree->dir);
}

void CodeMounts::Prepare(const registry::Deployed& fn) {
  if (!images_ || !fn.code) return;
  {
    std::lock_guard lock(mu_);
    pending_.push_back(fn);
  }
  cv_.notify_one();
}

void CodeMounts::PrepareLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    registry::Deployed fn = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    for (const auto* tree : {&fn.code, &fn.opt})
      if (*tree)
        if (auto m = ImageMount(*tree); !m)
          log::Warning((tree == &fn.code ? "code image of " : "layers image of ") + fn.config.name +
                       ": " + m.error().ToString() + " (its starts mount the directory instead)");
    fn = {};  // the revision's last holder may be this copy: its tree goes outside the lock
    lock.lock();
  }
}

}  // namespace forklet::core
