// The fork-server protocol between the daemon and a zygote (SOCK_SEQPACKET + SCM_RIGHTS).
// A schema of fixed-size, versioned messages, the same for every language's zygote.
#pragma once

#include <linux/filter.h>

#include <cstdint>

#include "sandbox/child_setup.h"

namespace forklet::zygote {

constexpr uint32_t kMagic = 0x544c4b46;  // "FKLT"
constexpr uint16_t kVersion = 1;

enum class MsgType : uint16_t {
  kHello = 1,      // zygote -> daemon once booted: {pid, boot_us}
  kConfigure = 2,  // daemon -> zygote: the compiled seccomp program (body: sock_filter[])
  kFork = 3,       // daemon -> zygote: ForkRequest; fds: channel, log, cgroup procs...
  kForkReply = 4,  // zygote -> daemon: ForkReply
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
  uint32_t n_instructions;
  uint32_t reserved;
  // followed by n_instructions sock_filter
};

struct ForkRequest {
  MsgHeader h;
  sandbox::ChildSpec spec;
  uint32_t n_cgroup_fds;  // fds arrive as [channel, log, cgroup procs x n]
  uint32_t reserved;
};

struct ForkReply {
  MsgHeader h;
  int32_t pid;  // in the daemon's pid namespace; the child is the daemon's (CLONE_PARENT)
  int32_t err;  // errno of a failed clone, 0 on success
  uint32_t fork_us;
  uint32_t reserved;
};

}  // namespace forklet::zygote
