// A function's code as a filesystem of its own: a read-only EROFS image per code revision, mounted
// from the file (no loop device), so that an instance's /var/task is the root of its own
// filesystem. /proc/self/mountinfo then shows "/" and a neutral source instead of the host path of
// the state dir that a bind mount of the unpacked directory reveals.
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::sandbox {

// Whether this host can: mkfs.erofs installed and the kernel mounts an EROFS image straight from a
// file (CONFIG_EROFS_FS_BACKED_BY_FILE, Linux 6.12+). Probed once with a real image; why not, in
// *why (for the daemon's start-up log).
bool CodeImagesSupported(std::string* why = nullptr);

// Builds the image of `dir` at `image` (written beside it, then renamed: a crash leaves no half
// image under that name). Modes and mtimes are kept; every file is owned by root.
Status BuildCodeImage(const std::string& dir, const std::string& image);

// Mounts `image` read-only (nosuid, nodev) as a detached mount; its source reads as
// "/proc/self/fd/N", not the image's path. The caller owns the returned mount fd; clone it with
// open_tree(fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH) for each instance.
Result<int> MountCodeImage(const std::string& image);

}  // namespace forklet::sandbox
