// One live instance: a sandboxed process serving one function, one invocation at a time.
// Its life has one owner (the scheduler's pool); destroying it kills and removes everything.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <vector>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/core/invocation.h"
#include "runtime/core/netns_cache.h"
#include "runtime/core/tmp_area_pool.h"
#include "sandbox/cgroup.h"
#include "sandbox/error.h"
#include "zygote/channel.h"

namespace forklet::core {

using Clock = std::chrono::steady_clock;

// What the daemon got back from an instance's channel for one invocation.
struct ChannelResult {
  Outcome outcome = Outcome::kSuccess;
  std::string body;
  double handler_ms = 0;  // as the runner timed it
  std::string output;     // the function's stdout/stderr during the invocation (bounded tail)
  bool output_truncated = false;
  std::string exit_reason;  // when the instance exited: "exit status 1", "signal: ..."
};

class Instance {
 public:
  Instance(std::string function, std::string generation, uint32_t memory_mb, pid_t pid, int channel_fd,
           int log_fd, std::unique_ptr<sandbox::Cgroup> cgroup);
  ~Instance();  // Destroy()
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Sends the function's init message, then waits for the sandbox setup report (unless
  // AwaitBoot read it), the runtime's boot report if it sends one, and the runner's ready. Fills
  // stages with the setup steps, runtime_boot and init. On an init error, result holds it.
  Status Start(const nlohmann::json& init, Clock::time_point deadline, Stages* stages,
               double* init_ms, ChannelResult* init_error);

  // For a copy restored from a snapshot (taken after its ready): tells it so (it renews what must
  // differ between copies) and waits for its ready.
  Status Resume(Clock::time_point deadline);
  // A stem cell (stem_cells.h): forked without code, it reports its sandbox setup and then that
  // its runtime has booted (kBooted). Fails, and destroys it, when it does not.
  Status AwaitBoot(Clock::time_point deadline, Stages* stages);
  // An instance forked ahead of demand (preforks.h): reads its sandbox setup report now, so that
  // its Start only sends INIT and waits for ready. Fails, and destroys it, when setup failed.
  Status AwaitSetup(Clock::time_point deadline, Stages* stages);
  // Sends an instance forked ahead its init message early (kPrepare; Python's runner only): it
  // sets up its function's environment while it waits, and Start then sends {"prepared": true}
  // whatever init it is given. Fails, and destroys it, when the channel is gone.
  Status Prepare(const nlohmann::json& init, Clock::time_point deadline);
  bool prepared() const { return prepared_; }
  // Gives a booted stem cell to a function: before Start, once its code is mounted.
  void AssignTo(std::string function, std::string generation, uint32_t memory_mb);
  // Holds what the instance's /var/task is a bind mount of (its code tree) until it is gone.
  void PinCode(std::shared_ptr<const void> code) { code_pin_ = std::move(code); }
  // What it was forked from (its function's zygote) lives at least as long as it does: the
  // zygote bank counts a function's live instances by these references.
  void HoldOrigin(std::shared_ptr<const void> origin) { origin_ = std::move(origin); }
  // Runs once, on the invoking thread, after the instance's first answered invocation (while it
  // still lives): its zygote learns from it which pages a child touches (zygote/fault_ahead.h).
  void AfterFirstAnswer(std::function<void(pid_t)> hook) { after_first_answer_ = std::move(hook); }
  // SIGKILL to the instance (its pid namespace's init: everything in it dies); Destroy reaps it.
  // A frozen one dies once Destroy thaws it.
  void Kill();
  // Its /tmp area, given back to the pool once every process of the instance is gone.
  void KeepTmp(TmpLease tmp) { tmp_ = std::move(tmp); }
  // Its net namespace, likewise given back (for its function's next new instance) once every
  // process of the instance is gone.
  void KeepNetns(NetnsLease netns) { netns_ = std::move(netns); }
  // The cgroup's limits, for a stem cell given to a function.
  sandbox::Cgroup* cgroup() { return cgroup_.get(); }
  int channel_fd() const { return channel_fd_; }

  // Runs one invocation; on timeout, OOM or a crash the instance is dead afterwards.
  // invoked_arn: the ARN the client named (an alias's, say); empty: the instance's own.
  // spin: how long to keep asking for the result before sleeping on the channel (its wake-up
  // costs ~10 us); the scheduler gives it only when this is the one invocation in flight.
  ChannelResult Invoke(const std::string& request_id, int64_t deadline_epoch_ms,
                       const std::string& payload, Clock::time_point deadline,
                       const std::string& invoked_arn = {},
                       std::chrono::microseconds spin = std::chrono::microseconds(0));

  // Peak memory (MB) since init (Lambda's Max Memory Used: the high-water mark of the execution
  // environment) and CPU time (ms) since the last call. Two preads of the cgroup's counters.
  struct Usage {
    uint64_t peak_memory_mb = 0;
    double cpu_ms = 0;
  };
  Usage TakeUsage();
  void ResetUsage();  // after init or a restore: what they used is not an invocation's

  void Destroy();  // SIGKILL, reap, remove the cgroup. Idempotent.

  // Idle instances do not run: Park freezes the instance's cgroup (whatever it started after its
  // response stops until the next invocation), Unpark thaws it before one. Park's failure is
  // logged, the instance then stays runnable; Unpark's makes it unusable.
  void Park();
  Status Unpark();
  bool parked() const { return parked_; }

  // False when an idle instance has closed its channel or written to it unasked: it has ended
  // or is misbehaving, and must not be used.
  bool QuietWhileIdle();

  bool dead() const { return dead_; }
  const std::string& function() const { return function_; }
  // Which deployment it runs: changes with every code or configuration change, and across a
  // delete and re-create of the same name.
  const std::string& generation() const { return generation_; }
  uint32_t memory_mb() const { return memory_mb_; }
  pid_t pid() const { return pid_; }
  Clock::time_point last_used;

 private:
  enum class Read { kFrame, kTimeout, kEof, kBad };
  Read ReadFrame(Clock::time_point deadline, uint32_t* type, std::string* meta, std::string* payload,
                 ChannelResult* logs, std::chrono::microseconds spin = std::chrono::microseconds(0));
  // The channel's bytes come through in_ (one read for a small frame, not one per part):
  Read Fill(Clock::time_point deadline, ChannelResult* logs, std::chrono::microseconds spin);
  Read TakeExact(char* dst, size_t len, Clock::time_point deadline, ChannelResult* logs);
  // Until the channel is ready (POLLIN, or POLLOUT for a large write), draining its output.
  Read Wait(Clock::time_point deadline, ChannelResult* logs, short channel_events = POLLIN);
  bool WriteFrame(uint32_t type, const std::string& meta, const std::string& payload,
                  Clock::time_point deadline);
  void DrainLog(ChannelResult* into);
  Status ReadSetup(Clock::time_point deadline, Stages* stages);  // the child's SetupReport frame
  Outcome DeathOutcome();  // why the instance ended: OOM or a crash
  // After its channel closed: waits a moment for the instance to exit and reaps it. Its exit
  // status, or "" when it has not exited (then Destroy kills it).
  std::string ReapExited();

  std::shared_ptr<const void> code_pin_;  // first: released after Destroy has run
  std::function<void(pid_t)> after_first_answer_;
  std::string function_;
  std::string generation_;
  uint32_t memory_mb_;
  pid_t pid_;
  int channel_fd_;
  int log_fd_;
  std::unique_ptr<sandbox::Cgroup> cgroup_;
  TmpLease tmp_;
  NetnsLease netns_;
  std::shared_ptr<const void> origin_;  // released after ~Instance has killed and reaped it
  bool dead_ = false;
  bool destroyed_ = false;
  bool killed_ = false;
  bool setup_read_ = false;  // the SetupReport frame is in (AwaitBoot, AwaitSetup or Start)
  bool forked_ahead_ = false;  // AwaitSetup: its runner's post-fork work is not its start's
  bool prepared_ = false;      // Prepare: its init message is in
  bool booted_ = false;      // the runtime's kBooted frame is in
  bool reaped_ = false;  // its pid is gone (and may be reused): never signal it again
  bool parked_ = false;  // its cgroup is frozen
  uint64_t cpu_ns_seen_ = 0;  // the cgroup's CPU counter at the last TakeUsage
  size_t oversized_result_bytes_ = 0;  // of the last frame read: a result too large, dropped
  static constexpr size_t kReadAhead = 16384;
  std::vector<char> in_;  // read from the channel, not yet taken: [in_begin_, in_end_)
  size_t in_begin_ = 0, in_end_ = 0;
  bool log_closed_ = false;  // its output hung up: no longer polled
};

// The instance's side of its channel, checked without trusting a byte. Pure, so that
// tests/fuzz/channel_frame_fuzz.cc drives them. nullopt: the instance broke the protocol.
bool ValidFrameFromInstance(const zygote::FrameHeader& h);  // a known type, sizes in bounds
struct ResultMeta {
  bool ok = false;
  double handler_us = 0;
  bool last = false;  // the instance ends after this result (its runtime exited)
};
std::optional<ResultMeta> ParseResultMeta(std::string_view meta);  // kResult: {ok, handler_us[, last]}
std::optional<double> ParseReadyMeta(std::string_view meta);       // kReady: init_us
std::optional<double> ParseBootedMeta(std::string_view meta);      // kBooted: boot_us
struct InitErrorMeta {
  std::string body;  // {errorMessage, errorType[, stackTrace]}: Lambda's shape, nothing more
  double init_us = 0;
};
std::optional<InitErrorMeta> ParseInitErrorMeta(std::string_view meta);  // kInitError

}  // namespace forklet::core
