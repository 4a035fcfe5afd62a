// The fork-server protocol between the daemon and a zygote (SOCK_SEQPACKET + SCM_RIGHTS).
// A schema of fixed-size, versioned messages, the same for every language's zygote.
#pragma once

#include <linux/filter.h>

#include <cstdint>

#include "sandbox/child_setup.h"
#include "sandbox/template_root.h"

namespace forklet::zygote {

constexpr uint32_t kMagic = 0x544c4b46;  // "FKLT"
constexpr uint16_t kVersion = 1;

enum class MsgType : uint16_t {
  kHello = 1,       // zygote -> daemon once booted: {pid, boot_us}
  kConfigure = 2,   // daemon -> zygote: template root + the compiled seccomp program
  kFork = 3,        // daemon -> zygote: ForkRequest; fds: channel, log, code dir, net ns, /tmp, cgroup procs...
  kForkReply = 4,   // zygote -> daemon: ForkReply
  kConfigured = 5,  // zygote -> daemon: ConfiguredMsg (the template root is entered, or why not)
  kMountCode = 6,   // daemon -> zygote: MountCodeRequest; fds: the code dir (a detached mount), /tmp
  kMountCodeReply = 7,  // zygote -> daemon: MountCodeReply
  kLearnFaults = 8,     // daemon -> zygote: LearnFaultsRequest (zygote/fault_ahead.h)
  kLearnFaultsReply = 9,  // zygote -> daemon: LearnFaultsReply
};

struct MsgHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint64_t seq;
};

struct HelloMsg {
  MsgHeader h;
  int32_t pid;
  uint32_t boot_us;  // interpreter boot plus preloading, as the zygote measured it
};

constexpr uint32_t kMaxFilterInstructions = 4096;
struct ConfigureMsg {
  MsgHeader h;
  sandbox::TemplateSpec root;
  uint32_t n_instructions;
  uint32_t reserved;
  // followed by n_instructions sock_filter
};

// kConfigure may carry one fd: the template root's mount namespace, built once by the daemon
// (sandbox::JoinTemplateRoot); without it, or when joining fails, the zygote builds its own.
struct ConfiguredMsg {
  MsgHeader h;
  int32_t err;         // 0 when ready to fork
  uint32_t joined;     // 1: it joined the namespace sent; 0: it built the template itself
  char message[256];   // what failed, for the daemon's error (err 0: why it could not join)
};

struct ForkRequest {
  MsgHeader h;
  sandbox::ChildSpec spec;
  uint32_t n_cgroup_fds;  // fds arrive as [channel, log, (code dir), (layers), (net ns), (/tmp), cgroup procs x n]
  uint32_t flags;         // kForkWithNetNs, kForkWithoutCode, kForkWithLayers, kForkWithTmp
};

constexpr uint32_t kForkWithNetNs = 1;
// The child execs a fresh interpreter inside its sandbox instead of running on as a copy of the
// zygote: every file it maps is then reached through the sandbox's own mounts, which is what a
// CRIU checkpoint needs (a zygote's mappings point at host mounts the sandbox does not have).
constexpr uint32_t kForkExecRunner = 2;
constexpr uint32_t kForkWithoutCode = 4;  // no code dir fd: a stem cell, /var/task stays empty
constexpr uint32_t kForkWithLayers = 8;   // the function's merged layers (a detached mount) for /opt
// A disk-backed /tmp (sandbox/tmp_area.h) as a detached mount; without it the child mounts a tmpfs.
constexpr uint32_t kForkWithTmp = 16;
// The most fds a request carries: channel, log, code, layers, net ns, /tmp, and the cgroup procs files.
constexpr int kMaxFixedFds = 6;

struct ForkReply {
  MsgHeader h;
  int32_t pid;  // in the daemon's pid namespace; the child is the daemon's (CLONE_PARENT)
  int32_t err;  // errno of a failed clone, 0 on success
  uint32_t fork_us;
  uint32_t reserved;
};

// A stem cell (a sandboxed, booted instance forked without code) gets its function's code: the
// zygote enters the instance's mount namespace, moves the detached code mount onto /var/task and
// returns to its own namespace; a second fd, when sent, is the function's layers, moved onto /opt (about 0.1 ms; a helper process forked for it cost 2.5 ms under
// load). To open the namespace it takes the instance's fs uid and gid: the kernel lets the same
// user open a dumpable process's namespaces, so no CAP_SYS_PTRACE is needed. setns needs
// CAP_SYS_ADMIN and CAP_SYS_CHROOT. A second fd, when sent, is the function's /tmp (a detached
// mount), moved over the stem cell's boot tmpfs.
struct MountCodeRequest {
  MsgHeader h;
  int32_t pid;   // the instance, in the daemon's (and the zygote's) pid namespace
  uint32_t uid;  // its uid and gid (ChildSpec)
  uint32_t gid;
  uint32_t reserved;  // kMountWithLayers | kMountWithTmp: which fds follow the code's, in that order
};
constexpr uint32_t kMountWithLayers = 1;  // the function's merged layers, for /opt
constexpr uint32_t kMountWithTmp = 2;     // the function's /tmp, over the stem cell's boot tmpfs

enum class MountCodeStep : uint32_t { kNone = 0, kOpenNamespace, kEnterNamespace, kMoveMount, kMoveTmp };

struct MountCodeReply {
  MsgHeader h;
  int32_t err;    // 0: the code is at /var/task
  uint32_t step;  // MountCodeStep that failed
  uint32_t mount_us;
  uint32_t reserved;
};

// After an instance forked from this zygote has answered its first invocation: the zygote reads
// which of its pages that instance touched (with CAP_SYS_PTRACE, else as the instance's fs uid
// and gid, like kMountCode) and from then on has every child it forks populate them (the child's fault_ahead step). A
// zygote that has a plan keeps it; asking again replaces it.
struct LearnFaultsRequest {
  MsgHeader h;
  int32_t pid;  // the instance, in the zygote's pid namespace; forked from this zygote, not exec'd
  uint32_t uid;
  uint32_t gid;
  uint32_t reserved;
};

struct LearnFaultsReply {
  MsgHeader h;
  int32_t err;  // 0: a plan is kept; else why not (ESRCH: the instance was gone)
  uint32_t learn_us;
  uint64_t write_pages;
  uint64_t read_pages;
  uint32_t ranges;
  uint32_t reserved;
};

}  // namespace forklet::zygote
