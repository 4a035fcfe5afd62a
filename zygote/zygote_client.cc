// Daemon side of the fork server: spawning a zygote and the request/reply exchange.
#include "zygote/zygote_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iterator>
#include <string>

#include "zygote/protocol.h"

namespace forklet::zygote {
namespace {

uint64_t NowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

MsgHeader Header(MsgType type, uint64_t seq) {
  return MsgHeader{kMagic, kVersion, static_cast<uint16_t>(type), seq};
}

// Waits for one message of exactly `len` bytes, up to timeout_ms.
Status ReceiveExact(int fd, void* out, size_t len, int timeout_ms, const char* what) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, timeout_ms); while (rc < 0 && errno == EINTR);
  if (rc == 0) return MakeError(what, "the zygote did not answer within " +
                                          std::to_string(timeout_ms) + " ms");
  if (rc < 0) return SysError(what);
  ssize_t n;
  do n = recv(fd, out, len, 0); while (n < 0 && errno == EINTR);
  if (n < 0) return SysError(what);
  if (n == 0) return MakeError(what, "the zygote exited");
  if (static_cast<size_t>(n) != len) return MakeError(what, "malformed reply from the zygote");
  return {};
}

}  // namespace

Result<std::unique_ptr<ZygoteProcess>> ZygoteProcess::Spawn(
    const ZygoteCommand& command, const sandbox::TemplateSpec& root,
    const sandbox::SeccompProgram& seccomp,
    const std::function<void(pid_t)>& on_spawned, int hello_timeout_ms, int template_ns_fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return SysError("zygote: socketpair");
  uint64_t t0 = NowMicros();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);  // dup2 clears CLOEXEC on fd 3
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);

  std::vector<char*> argv, envp;
  for (const auto& a : command.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : command.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    return SysError("zygote: spawn " + command.argv[0], rc);
  }
  std::unique_ptr<ZygoteProcess> z(new ZygoteProcess(pid, sv[0]));
  if (on_spawned) on_spawned(pid);

  HelloMsg hello;
  if (auto s = ReceiveExact(z->fd_, &hello, sizeof(hello), hello_timeout_ms, "zygote: hello"); !s)
    return Error{s.error().op, s.error().err, s.error().message + " (" + command.argv[0] + ")"};
  if (hello.h.magic != kMagic || hello.h.version != kVersion ||
      hello.h.type != static_cast<uint16_t>(MsgType::kHello))
    return MakeError("zygote: hello", "protocol mismatch");
  z->boot_us_ = hello.boot_us;
  z->spawn_us_ = NowMicros() - t0;

  std::vector<char> msg(sizeof(ConfigureMsg) + seccomp.instructions.size() * sizeof(sock_filter));
  ConfigureMsg cfg{Header(MsgType::kConfigure, 0), root,
                   static_cast<uint32_t>(seccomp.instructions.size()), 0};
  memcpy(msg.data(), &cfg, sizeof(cfg));
  memcpy(msg.data() + sizeof(cfg), seccomp.instructions.data(),
         seccomp.instructions.size() * sizeof(sock_filter));
  ConfiguredMsg configured;
  const int ns_fds[1] = {template_ns_fd};  // the template namespace rides along, if any
  {
    std::lock_guard lock(z->mu_);
    if (auto s = z->ExchangeLocked(msg.data(), msg.size(), ns_fds, template_ns_fd >= 0 ? 1 : 0,
                                   &configured, sizeof(configured), "zygote: configure",
                                   hello_timeout_ms);
        !s)
      return s.error();
  }
  configured.message[sizeof(configured.message) - 1] = 0;
  if (configured.err != 0) return Error{"zygote: configure", 0, configured.message};
  if (template_ns_fd >= 0 && !configured.joined)
    z->join_error_ = configured.message[0] ? configured.message : "it did not say why";
  return z;
}

ZygoteProcess::~ZygoteProcess() {
  close(fd_);
  if (reaped_) return;
  // Closing the socket makes the zygote exit; don't wait long for it.
  for (int i = 0; i < 100; ++i) {
    pid_t r = waitpid(pid_, nullptr, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) return;
    if (i == 20) kill(pid_, SIGKILL);
    usleep(1000);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

void ZygoteProcess::MarkDead() { dead_ = true; }

void ZygoteProcess::ReapDead() {
  std::lock_guard lock(mu_);
  if (reaped_) return;
  // Dead to us even if it only stopped answering: it goes. (Still our unreaped child, so the
  // pid cannot belong to anyone else.) The socket hangs up a moment before the zombie exists.
  kill(pid_, SIGKILL);
  for (int i = 0; i < 200; ++i) {
    pid_t r = waitpid(pid_, nullptr, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      return;
    }
    if (r < 0 && errno == EINTR) continue;
    usleep(1000);
  }
}

bool ZygoteProcess::alive() {
  std::lock_guard lock(mu_);
  if (dead_) return false;
  pollfd p{fd_, 0, 0};  // POLLHUP is always reported
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) dead_ = true;
  return !dead_;
}

Status ZygoteProcess::ExchangeLocked(const void* request, size_t request_len, const int* fds,
                                     size_t n_fds, void* reply, size_t reply_len, const char* what,
                                     int timeout_ms) {
  constexpr size_t kMaxFds = kMaxFixedFds + sandbox::kMaxCgroupFds;
  if (n_fds > kMaxFds) return MakeError(what, "too many fds");
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)]{};
  iovec iov{const_cast<void*>(request), request_len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n_fds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
  }
  if (sendmsg(fd_, &msg, MSG_NOSIGNAL) < 0) {
    dead_ = true;
    return SysError(what);
  }
  if (auto s = ReceiveExact(fd_, reply, reply_len, timeout_ms, what); !s) {
    dead_ = true;
    return s.error();
  }
  MsgHeader sent, got;
  memcpy(&sent, request, sizeof(sent));
  memcpy(&got, reply, sizeof(got));
  if (got.seq != sent.seq) {
    dead_ = true;
    return MakeError(what, "out-of-order reply");
  }
  return {};
}

Result<ForkedChild> ZygoteProcess::Fork(const sandbox::ChildSpec& spec, int channel_fd,
                                        int log_fd, int code_fd, int net_fd,
                                        const std::vector<int>& cgroup_fds, bool exec_runner,
                                        int opt_fd, int tmp_fd) {
  if (cgroup_fds.size() > static_cast<size_t>(sandbox::kMaxCgroupFds))
    return MakeError("zygote: fork", "too many cgroup fds");
  std::lock_guard lock(mu_);
  if (dead_) return MakeError("zygote: fork", "the zygote has exited");
  ForkRequest req{};
  req.h = Header(MsgType::kFork, ++seq_);
  req.spec = spec;
  req.n_cgroup_fds = static_cast<uint32_t>(cgroup_fds.size());
  req.flags = (net_fd >= 0 ? kForkWithNetNs : 0) | (exec_runner ? kForkExecRunner : 0) |
              (code_fd < 0 ? kForkWithoutCode : 0) | (code_fd >= 0 && opt_fd >= 0 ? kForkWithLayers : 0) |
              (tmp_fd >= 0 ? kForkWithTmp : 0);

  int fds[kMaxFixedFds + sandbox::kMaxCgroupFds];
  size_t n_fds = 0;
  for (int fd : {channel_fd, log_fd}) fds[n_fds++] = fd;
  if (code_fd >= 0) fds[n_fds++] = code_fd;
  if (code_fd >= 0 && opt_fd >= 0) fds[n_fds++] = opt_fd;
  if (net_fd >= 0) fds[n_fds++] = net_fd;
  if (tmp_fd >= 0) fds[n_fds++] = tmp_fd;
  for (int fd : cgroup_fds) fds[n_fds++] = fd;
  uint64_t t0 = NowMicros();
  ForkReply reply;
  if (auto s = ExchangeLocked(&req, sizeof(req), fds, n_fds, &reply, sizeof(reply), "zygote: fork"); !s)
    return s.error();
  if (reply.pid <= 0) return SysError("zygote: clone", reply.err ? reply.err : EIO);
  return ForkedChild{reply.pid, reply.fork_us, NowMicros() - t0};
}

Result<uint64_t> ZygoteProcess::MountCode(pid_t pid, uint32_t uid, uint32_t gid, int code_fd,
                                          int opt_fd, int tmp_fd) {
  std::lock_guard lock(mu_);
  if (dead_) return MakeError("zygote: mount code", "the zygote has exited");
  MountCodeRequest req{Header(MsgType::kMountCode, ++seq_), static_cast<int32_t>(pid), uid, gid, 0};
  uint64_t t0 = NowMicros();
  MountCodeReply reply;
  req.reserved = (opt_fd >= 0 ? kMountWithLayers : 0) | (tmp_fd >= 0 ? kMountWithTmp : 0);
  int fds[3] = {code_fd, -1, -1};
  size_t n_fds = 1;
  if (opt_fd >= 0) fds[n_fds++] = opt_fd;
  if (tmp_fd >= 0) fds[n_fds++] = tmp_fd;
  if (auto s = ExchangeLocked(&req, sizeof(req), fds, n_fds, &reply, sizeof(reply),
                              "zygote: mount code");
      !s)
    return s.error();
  if (reply.err != 0) {
    static constexpr const char* kSteps[] = {"request", "open mount namespace",
                                             "enter mount namespace", "move code onto /var/task and layers onto /opt",
                                             "move the function's /tmp onto /tmp"};
    const char* step = reply.step < std::size(kSteps) ? kSteps[reply.step] : "unknown step";
    return SysError(std::string("zygote: mount code: ") + step, reply.err);
  }
  return NowMicros() - t0;
}

Result<ZygoteProcess::FaultsLearned> ZygoteProcess::LearnFaults(pid_t child, uint32_t uid, uint32_t gid) {
  std::lock_guard lock(mu_);
  if (dead_) return MakeError("zygote: learn faults", "the zygote has exited");
  LearnFaultsRequest req{Header(MsgType::kLearnFaults, ++seq_), static_cast<int32_t>(child), uid, gid, 0};
  LearnFaultsReply reply;
  if (auto s = ExchangeLocked(&req, sizeof(req), nullptr, 0, &reply, sizeof(reply),
                              "zygote: learn faults");
      !s)
    return s.error();
  if (reply.err != 0) return SysError("zygote: learn faults from instance " + std::to_string(child), reply.err);
  fault_ahead_pages_ = reply.write_pages + reply.read_pages;
  return FaultsLearned{reply.write_pages, reply.read_pages, reply.ranges, reply.learn_us};
}

}  // namespace forklet::zygote
