// The zygote side of the fork server: receive a request, clone into fresh namespaces, let the
// child apply its sandbox, answer with the pid. Single-threaded by contract.
#include "zygote/zygote_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "sandbox/child_setup.h"
#include "zygote/channel.h"
#include "zygote/fault_ahead.h"
#include "zygote/protocol.h"

namespace forklet::zygote {
namespace {

uint64_t NowMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

MsgHeader Header(MsgType type, uint64_t seq) {
  return MsgHeader{kMagic, kVersion, static_cast<uint16_t>(type), seq};
}

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Child side: the first channel frame, async-signal-safe.
void SendSetupFrame(int fd, const sandbox::SetupReport& report) {
  FrameHeader h{static_cast<uint32_t>(FrameType::kSetup), 0, sizeof(report)};
  WriteAll(fd, &h, sizeof(h));
  WriteAll(fd, &report, sizeof(report));
}

// How long the control socket stays quiet before the zygote does a slice of idle work.
constexpr uint64_t kIdleAfterUs = 50'000;
constexpr uint64_t kIdleEveryUs = 1'000'000;  // ... or since its last slice

struct Server {
  int control_fd = -1;
  std::vector<sock_filter> filter;  // from kConfigure, kept for every child
  sock_fprog fprog{};
  cap_t empty_caps = cap_init();
  int (*idle_hook)(void) = nullptr;
  bool configured = false;  // in the template root; forks are refused before
  bool child_execs = false;  // in a child: the request's kForkExecRunner
  int own_mnt_ns = -1;      // the template root's namespace, to return to after kMountCode
  FaultAheadPlan fault_ahead;  // from kLearnFaults: what every child populates (fault_ahead.h)

  // Returns 0 in a ready child, -1 when the daemon has gone; loops otherwise.
  int Run(uint32_t boot_us) {
    HelloMsg hello{Header(MsgType::kHello, 0), static_cast<int32_t>(getpid()), boot_us};
    if (send(control_fd, &hello, sizeof(hello), MSG_NOSIGNAL) < 0) return -1;
    std::vector<char> buf(sizeof(ConfigureMsg) + kMaxFilterInstructions * sizeof(sock_filter));
    uint64_t last_message_us = NowMicros(), last_slice_us = last_message_us;
    for (;;) {
      // Idle work (a runtime's preloads) once configured, after kIdleAfterUs without a message: a
      // slice can take milliseconds (Python's import of json ~6 ms) and a cold start's first fork
      // request follows the configuration by a few. Under a steady stream of requests a slice
      // still runs every kIdleEveryUs, so the preloads finish.
      if (idle_hook && configured) {
        auto due = [&] {
          uint64_t now = NowMicros();
          return now - last_message_us >= kIdleAfterUs || now - last_slice_us >= kIdleEveryUs;
        };
        const uint64_t quiet = NowMicros() - last_message_us;
        const int wait_ms = quiet >= kIdleAfterUs ? 0 : static_cast<int>((kIdleAfterUs - quiet) / 1000 + 1);
        pollfd p{control_fd, POLLIN, 0};
        int ready = poll(&p, 1, due() ? 0 : wait_ms);
        if (ready == 0 && due()) {  // nothing waiting: a slice
          if (idle_hook() == 0) idle_hook = nullptr;
          last_slice_us = NowMicros();
          continue;
        }
        if (ready <= 0) continue;  // EINTR, or woke early
      }
      int fds[kMaxFixedFds + sandbox::kMaxCgroupFds];
      int n_fds = 0;
      ssize_t n = Receive(buf.data(), buf.size(), fds, &n_fds);
      if (n == 0 || (n < 0 && errno != EINTR)) return -1;
      if (n < 0) continue;
      last_message_us = NowMicros();
      if (Handle(buf.data(), static_cast<size_t>(n), fds, n_fds) == 0) return 0;  // the child
      for (int i = 0; i < n_fds; ++i) close(fds[i]);  // the child has its copies
    }
  }

  ssize_t Receive(char* buf, size_t cap, int* fds, int* n_fds) {
    iovec iov{buf, cap};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFixedFds + sandbox::kMaxCgroupFds))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(control_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(fds + *n_fds, CMSG_DATA(c), sizeof(int) * count);
      *n_fds += count;
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return -2;  // malformed: ignored by Handle
    return n;
  }

  // 0 in a child that is ready to run; 1 in the zygote.
  int Handle(const char* buf, size_t len, const int* fds, int n_fds) {
    if (len < sizeof(MsgHeader)) return 1;
    MsgHeader h;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != kMagic || h.version != kVersion) return 1;
    switch (static_cast<MsgType>(h.type)) {
      case MsgType::kConfigure: {
        if (len < sizeof(ConfigureMsg)) return 1;
        ConfigureMsg m;
        memcpy(&m, buf, sizeof(m));
        if (m.n_instructions > kMaxFilterInstructions ||
            len != sizeof(m) + m.n_instructions * sizeof(sock_filter))
          return 1;
        filter.resize(m.n_instructions);
        memcpy(filter.data(), buf + sizeof(m), m.n_instructions * sizeof(sock_filter));
        fprog = sock_fprog{static_cast<unsigned short>(filter.size()), filter.data()};
        ConfiguredMsg reply{Header(MsgType::kConfigured, h.seq), 0, 0, {}};
        m.root.root[sizeof(m.root.root) - 1] = 0;
        m.root.etc_dir[sizeof(m.root.etc_dir) - 1] = 0;
        Status root;
        if (!configured && n_fds == 1) {
          root = sandbox::JoinTemplateRoot(fds[0]);  // the daemon's template, a copy of our own
          reply.joined = root.ok() ? 1 : 0;
          if (!root) snprintf(reply.message, sizeof(reply.message), "%s", root.error().ToString().c_str());
        }
        if (!configured && !reply.joined) root = sandbox::EnterTemplateRoot(m.root);
        if (configured) {
          reply.err = EALREADY;
          snprintf(reply.message, sizeof(reply.message), "the zygote is configured already");
        } else if (!root) {
          reply.err = root.error().err ? root.error().err : EINVAL;
          snprintf(reply.message, sizeof(reply.message), "%s", root.error().ToString().c_str());
        } else {
          configured = true;
          own_mnt_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
          // Instances inherit the zygote's argument area as their /proc/1/cmdline.
          (void)sandbox::NeutralCommandLine("forklet-zygote");
        }
        send(control_fd, &reply, sizeof(reply), MSG_NOSIGNAL);
        return 1;
      }
      case MsgType::kFork: {
        if (len != sizeof(ForkRequest)) return 1;
        ForkRequest req;
        memcpy(&req, buf, sizeof(req));
        return Fork(req, fds, n_fds);
      }
      case MsgType::kLearnFaults: {
        if (len != sizeof(LearnFaultsRequest)) return 1;
        LearnFaultsRequest req;
        memcpy(&req, buf, sizeof(req));
        LearnFaults(req);
        return 1;
      }
      case MsgType::kMountCode: {
        if (len != sizeof(MountCodeRequest)) return 1;
        MountCodeRequest req;
        memcpy(&req, buf, sizeof(req));
        MountCode(req, fds, n_fds);
        return 1;
      }
      default:
        return 1;
    }
  }

  int Fork(const ForkRequest& req, const int* fds, int n_fds) {
    ForkReply reply{Header(MsgType::kForkReply, req.h.seq), -1, 0, 0, 0};
    const bool with_code = !(req.flags & kForkWithoutCode);
    const bool with_net = req.flags & kForkWithNetNs;
    const bool with_layers = with_code && (req.flags & kForkWithLayers);
    const bool with_tmp = req.flags & kForkWithTmp;
    const int fixed = 2 + with_code + with_layers + with_net + with_tmp;
    if (!configured || n_fds != fixed + static_cast<int>(req.n_cgroup_fds) ||
        req.n_cgroup_fds > sandbox::kMaxCgroupFds) {
      reply.err = EBADMSG;
      send(control_fd, &reply, sizeof(reply), MSG_NOSIGNAL);
      return 1;
    }
    sandbox::ChildResources res;
    res.channel_fd = fds[0];
    res.log_fd = fds[1];
    res.code_fd = with_code ? fds[2] : -1;
    res.opt_fd = with_layers ? fds[3] : -1;
    res.net_fd = with_net ? fds[2 + with_code + with_layers] : -1;
    res.tmp_fd = with_tmp ? fds[2 + with_code + with_layers + with_net] : -1;
    res.n_cgroup_fds = static_cast<int>(req.n_cgroup_fds);
    for (int i = 0; i < res.n_cgroup_fds; ++i) res.cgroup_fds[i] = fds[fixed + i];
    const int ns_flags = res.net_fd >= 0 ? sandbox::kSandboxCloneFlags & ~sandbox::kCloneNewNet
                                         : sandbox::kSandboxCloneFlags;
    res.seccomp = filter.empty() ? nullptr : &fprog;
    res.empty_caps = empty_caps;
    res.fault_ahead = fault_ahead.ranges.data();
    res.n_fault_ahead = static_cast<int>(fault_ahead.ranges.size());

    uint64_t t0 = NowMicros();
    // Fork-like clone (no new stack): the child continues here with a copy of the zygote.
    // CLONE_PARENT makes the daemon its parent, so the daemon reaps it and sees its exit status.
    long pid = syscall(SYS_clone, CLONE_PARENT | ns_flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
      child_execs = (req.flags & kForkExecRunner) != 0;
      sandbox::SetupReport report{};
      sandbox::ApplyInChild(req.spec, res, &report);
      bool moved = report.ok || report.failed_step >= static_cast<uint32_t>(sandbox::SetupStep::kFds);
      SendSetupFrame(moved ? sandbox::kChannelFd : res.channel_fd, report);
      if (!report.ok) _exit(127);
      return 0;
    }
    reply.pid = static_cast<int32_t>(pid);
    reply.err = pid < 0 ? errno : 0;
    reply.fork_us = static_cast<uint32_t>(NowMicros() - t0);
    send(control_fd, &reply, sizeof(reply), MSG_NOSIGNAL);
    return 1;
  }

  void LearnFaults(const LearnFaultsRequest& req) {
    LearnFaultsReply reply{Header(MsgType::kLearnFaultsReply, req.h.seq), 0, 0, 0, 0, 0, 0};
    uint64_t t0 = NowMicros();
    if (!configured || req.pid <= 0) {
      reply.err = EBADMSG;
    } else {
      // Reading another user's page map takes CAP_SYS_PTRACE (the instance is not dumpable
      // after its setuid); without it, as the instance's own user, as kMountCode does.
      FaultAheadPlan plan;
      reply.err = LearnFaultAhead(req.pid, &plan);
      if (reply.err == EPERM || reply.err == EACCES) {
        setfsgid(req.gid);
        setfsuid(req.uid);
        reply.err = LearnFaultAhead(req.pid, &plan);
        setfsuid(0);
        setfsgid(0);
      }
      if (reply.err == 0) fault_ahead = std::move(plan);
      reply.write_pages = fault_ahead.write_pages;
      reply.read_pages = fault_ahead.read_pages;
      reply.ranges = static_cast<uint32_t>(fault_ahead.ranges.size());
    }
    reply.learn_us = static_cast<uint32_t>(NowMicros() - t0);
    send(control_fd, &reply, sizeof(reply), MSG_NOSIGNAL);
  }

  // kMountCode: the zygote enters the instance's mount namespace, moves the code onto
  // /var/task and returns to its own namespace (a zygote that cannot return exits: it must never
  // fork from another namespace).
  void MountCode(const MountCodeRequest& req, const int* fds, int n_fds) {
    MountCodeReply reply{Header(MsgType::kMountCodeReply, req.h.seq), 0, 0, 0, 0};
    uint64_t t0 = NowMicros();
    const bool with_layers = req.reserved & kMountWithLayers;
    const bool with_tmp = req.reserved & kMountWithTmp;
    if (!configured || n_fds != 1 + with_layers + with_tmp || req.pid <= 0 || own_mnt_ns < 0) {
      reply.err = EBADMSG;
    } else {
      char path[48];
      snprintf(path, sizeof(path), "/proc/%d/ns/mnt", req.pid);
      // As the instance's user: the kernel lets the same user open a dumpable process's
      // namespaces, so the daemon needs no CAP_SYS_PTRACE.
      setfsgid(req.gid);
      setfsuid(req.uid);
      int ns = open(path, O_RDONLY | O_CLOEXEC);
      int open_err = errno;
      setfsuid(0);
      setfsgid(0);
      if (ns < 0) {
        reply.step = static_cast<uint32_t>(MountCodeStep::kOpenNamespace), reply.err = open_err;
      } else if (setns(ns, CLONE_NEWNS) != 0) {
        reply.step = static_cast<uint32_t>(MountCodeStep::kEnterNamespace), reply.err = errno;
      } else {
        int rc = move_mount(fds[0], "", AT_FDCWD, "/var/task", MOVE_MOUNT_F_EMPTY_PATH);
        if (rc == 0 && with_layers) rc = move_mount(fds[1], "", AT_FDCWD, "/opt", MOVE_MOUNT_F_EMPTY_PATH);
        int err = errno;
        auto step = MountCodeStep::kMoveMount;
        if (rc == 0 && with_tmp) {  // the function's /tmp over the stem cell's boot tmpfs
          rc = move_mount(fds[1 + with_layers], "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH);
          err = errno;
          step = MountCodeStep::kMoveTmp;
        }
        if (setns(own_mnt_ns, CLONE_NEWNS) != 0) _exit(70);
        if (rc != 0) reply.step = static_cast<uint32_t>(step), reply.err = err;
      }
      if (ns >= 0) close(ns);
    }
    reply.mount_us = static_cast<uint32_t>(NowMicros() - t0);
    send(control_fd, &reply, sizeof(reply), MSG_NOSIGNAL);
  }
};

}  // namespace
}  // namespace forklet::zygote

namespace {
forklet::zygote::Server& TheServer() {
  static forklet::zygote::Server server;
  return server;
}
}  // namespace

extern "C" void forklet_zygote_set_idle_hook(int (*hook)(void)) { TheServer().idle_hook = hook; }

extern "C" int forklet_zygote_child_execs(void) { return TheServer().child_execs ? 1 : 0; }

extern "C" int forklet_zygote_serve(int control_fd, uint32_t boot_us) {
  TheServer().control_fd = control_fd;
  return TheServer().Run(boot_us);
}
