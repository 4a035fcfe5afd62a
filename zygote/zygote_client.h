// The daemon's end of the fork-server protocol: starts a zygote process and asks it to fork.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sandbox/child_setup.h"
#include "sandbox/error.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/template_root.h"

namespace forklet::zygote {

struct ZygoteCommand {
  std::vector<std::string> argv;  // argv[0] is the executable's absolute path
  std::vector<std::string> env;   // the zygote's whole environment
};

struct ForkedChild {
  pid_t pid = -1;
  uint32_t zygote_fork_us = 0;  // clone() as the zygote timed it
  uint64_t round_trip_us = 0;   // request sent to reply received, as the daemon saw it
};

// One zygote process. Thread-safe: requests are serialized (the zygote is single-threaded).
class ZygoteProcess {
 public:
  // posix_spawn (never fork the multithreaded daemon), wait for its hello (bounded by
  // hello_timeout_ms), then have it enter the template root and keep the seccomp program. Its
  // control socket is its fd 3.
  // on_spawned runs right after the process exists, while it boots (e.g. to move it into its
  // cgroup in parallel with the boot).
  // template_ns_fd: the template root built once (a mount namespace, see
  // sandbox::JoinTemplateRoot), which the zygote joins a copy of; -1: it builds its own from root.
  static Result<std::unique_ptr<ZygoteProcess>> Spawn(
      const ZygoteCommand& command, const sandbox::TemplateSpec& root,
      const sandbox::SeccompProgram& seccomp,
      const std::function<void(pid_t)>& on_spawned = {}, int hello_timeout_ms = 10000,
      int template_ns_fd = -1);
  ~ZygoteProcess();  // closes the socket (the zygote exits), SIGKILLs it if needed, reaps it

  // Sends a fork request with the child's fds (code_fd: the function's code as a detached mount,
  // or -1 for a stem cell that gets it later through MountCode); the fds stay owned by the caller.
  // net_fd: a pooled net namespace, or -1 to have clone make one.
  // exec_runner: the child execs a fresh runner in its sandbox (kForkExecRunner), for instances
  // that will be checkpointed. opt_fd: the function's merged layers for /opt (a detached mount,
  // with code only), or -1. tmp_fd: its /tmp as a detached mount (sandbox/tmp_area.h), or -1 for
  // a tmpfs of spec.tmp_size_bytes.
  Result<ForkedChild> Fork(const sandbox::ChildSpec& spec, int channel_fd, int log_fd, int code_fd,
                           int net_fd, const std::vector<int>& cgroup_fds, bool exec_runner = false,
                           int opt_fd = -1, int tmp_fd = -1);

  // Mounts code (a detached mount; stays the caller's) at /var/task of a child forked without
  // code, its layers (opt_fd, or -1) at /opt, and (tmp_fd >= 0) the function's /tmp over the stem
  // cell's boot tmpfs. uid and gid are the child's (its ChildSpec). Returns the round trip in
  // microseconds.
  Result<uint64_t> MountCode(pid_t pid, uint32_t uid, uint32_t gid, int code_fd, int opt_fd = -1,
                             int tmp_fd = -1);

  // Has the zygote learn, from a child of its own (not exec'd) that has answered an invocation,
  // which pages its children touch, and populate them in every child from then on
  // (zygote/fault_ahead.h). Takes the zygote for as long as it reads the child's page map (a
  // few ms); not for a request's thread.
  struct FaultsLearned {
    uint64_t write_pages = 0, read_pages = 0;
    uint32_t ranges = 0;
    uint64_t learn_us = 0;
  };
  Result<FaultsLearned> LearnFaults(pid_t child, uint32_t uid, uint32_t gid);
  // Whether to ask: not once it has learned, and at most three times (a child may be gone
  // before the zygote reads it).
  bool TakeLearnTurn() { return fault_ahead_pages_.load() == 0 && learn_turns_.fetch_sub(1) > 0; }
  uint64_t fault_ahead_pages() const { return fault_ahead_pages_.load(); }  // 0: none learned

  pid_t pid() const { return pid_; }
  uint32_t boot_us() const { return boot_us_; }      // as the zygote measured its own boot
  uint64_t spawn_us() const { return spawn_us_; }    // spawn to hello, as the daemon saw it
  // Spawn was given a template namespace and the zygote could not join it (it built its own):
  // why. Empty when it joined or was given none.
  const std::string& join_error() const { return join_error_; }
  bool alive();  // false once it has exited or stopped answering
  // For one found dead: reaps its exit at once (waiting up to ~200 ms for the exit to finish)
  // rather than when the last instance forked from it lets go of this object, so a killed
  // zygote is never left a zombie of the daemon. Idempotent.
  void ReapDead();

 private:
  ZygoteProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  void MarkDead();
  // Under mu_: one request (it opens with a MsgHeader) with its fds, and its reply of exactly
  // reply_len bytes with the same seq. A zygote that fails either is dead from then on.
  Status ExchangeLocked(const void* request, size_t request_len, const int* fds, size_t n_fds,
                        void* reply, size_t reply_len, const char* what, int timeout_ms = 5000);

  std::mutex mu_;
  pid_t pid_;
  int fd_;
  bool dead_ = false;
  bool reaped_ = false;  // its pid is no longer ours: never wait for or signal it again
  uint64_t seq_ = 0;
  std::atomic<int> learn_turns_{3};
  std::atomic<uint64_t> fault_ahead_pages_{0};
  uint32_t boot_us_ = 0;
  uint64_t spawn_us_ = 0;
  std::string join_error_;
};

}  // namespace forklet::zygote
