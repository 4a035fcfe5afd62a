// The zygote's one-time preparation: a private mount namespace whose root is the read-only
// template every instance starts from. Runs before the zygote's first fork (it may allocate).
#pragma once

#include <string>
#include <string_view>

#include "sandbox/error.h"

namespace forklet::sandbox {

struct TemplateSpec {
  char root[256];         // an existing empty host directory to build the template on
  char etc_dir[256];      // the minimal /etc, copied into a read-only tmpfs
  char runtime_dir[256];  // the runners (lang-runners/), copied read-only to /var/runtime; "": none
};

// One-way: afterwards the calling process sees only the template (/usr, /lib*, /bin, /sbin,
// /etc, /dev, the runners at /var/runtime, its own /proc, empty /tmp and /var/task mount points),
// read-only. /bin/sh is bash, as on Lambda's Amazon Linux. Fails with the
// step that failed, e.g. "template: bind /usr: ...".
Status EnterTemplateRoot(const TemplateSpec& spec);

// The same view from a template built once: joins the mount namespace template_ns_fd refers to
// (a process's after EnterTemplateRoot, /proc/PID/ns/mnt) and makes a private copy of it, so
// that nothing this process mounts later is seen by another that joined it. Builds nothing:
// two syscalls instead of a tmpfs, binds, copies and a pivot. Fails (and the caller builds its
// own with EnterTemplateRoot) without CAP_SYS_ADMIN or from a multithreaded process.
Status JoinTemplateRoot(int template_ns_fd);

// Overwrites this process's argument area with `name` (e.g. "forklet-zygote python3"): every
// instance forked from a zygote inherits it as its /proc/1/cmdline, which showed the host paths
// of the runners and libraries the zygote was started with. One-way.
Status NeutralCommandLine(std::string_view name);

// The daemon's half of an instance's code mount: a detached, read-only (nosuid, nodev) copy of
// `dir` (open_tree + mount_setattr). Unlike a path, it can be attached in any mount namespace:
// the child moves it onto /var/task. The caller owns the returned fd.
Result<int> DetachedReadOnlyTree(const std::string& dir);

}  // namespace forklet::sandbox
