// An instance's /tmp on disk: a sparse ext4 image of the function's EphemeralStorage size on a
// loop device, mounted detached, so that /tmp is bounded by its size and its pages are page cache
// the kernel can write back and drop, never memory that counts against the function's limit as a
// tmpfs's do. Made ahead of demand (runtime/core/tmp_area_pool.h): mkfs and mount cost ~0.1 s.
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/error.h"

namespace forklet::sandbox {

// A ready area: its mount (detached, nosuid, nodev, root mode 1777 and empty). The image file is
// unlinked as soon as the loop device holds it, and the loop device clears itself when the last
// mount of it goes (LO_FLAGS_AUTOCLEAR): closing mount_fd after the instance's namespace took the
// mount (or the instance's end, or the daemon's) leaves nothing behind, even after a kill -9.
struct TmpArea {
  int mount_fd = -1;
  uint64_t size_mb = 0;
  std::string loop;  // /dev/loopN
  uint64_t free_blocks = 0, free_inodes = 0;  // as made: what an emptied area must have again
};

// Makes one of size_mb in dir (which must exist; the image lives there only while it is built):
// a copy of the size's template (template-<size>.img in dir, made by mkfs.ext4 on first use).
Result<TmpArea> MakeTmpArea(const std::string& dir, uint64_t size_mb);

// An area an instance used, for the next one (sandbox/tmp_area_recycle.cc): everything below its
// root removed, its freed blocks trimmed (the image gives them back to the disk), checked to be as
// made (root 1777 root:root, as many free blocks and inodes), and mounted afresh (the instance's
// mount went with its namespace). Only once every process of the instance is gone. An error
// (something remains, the tree is too deep or too large to walk) leaves `used` to the caller, who
// closes it: the area is discarded. On success the caller closes used.mount_fd as well.
Result<TmpArea> RecycleTmpArea(const TmpArea& used);

// A new detached mount (nosuid, nodev) of the ext4 on an area's loop device.
Result<int> MountTmpAreaDevice(const std::string& dev);

// Whether this host can (mkfs.ext4, /dev/loop-control, ext4): probed once with a real area in dir;
// why not, in *why.
bool TmpAreasSupported(const std::string& dir, std::string* why = nullptr);

// What a daemon left in dir (templates; after a kill, half-made images): loop devices backed by
// files there are detached (if no mount holds them any more) and the files removed. Returns how
// many things it removed.
int RemoveTmpAreaLeftovers(const std::string& dir);

}  // namespace forklet::sandbox
