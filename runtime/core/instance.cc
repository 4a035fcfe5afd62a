// An instance's channel traffic (frames in, frames out, logs drained) and its teardown.
// Everything read from the instance is bounded and validated: a misbehaving one is killed.
#include "runtime/core/instance.h"

#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "runtime/log/log.h"
#include "sandbox/child_setup.h"
#include "zygote/channel.h"
#include "zygote/exit_status.h"
#include "zygote/frame_parts.h"
#include "runtime/timeline/request_timeline.h"

namespace forklet::core {
namespace {

constexpr size_t kMaxOutputBytes = 64 * 1024;  // kept per invocation (the tail)
constexpr size_t kMaxResponseBytes = 6 * 1024 * 1024 + 100;  // Lambda's: 6,291,556 bytes

int MillisUntil(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms + 1, 1 << 30));
}

void AppendBounded(ChannelResult* into, const char* data, size_t n) {
  into->output.append(data, n);
  if (into->output.size() > 2 * kMaxOutputBytes) {
    into->output.erase(0, into->output.size() - kMaxOutputBytes);
    into->output_truncated = true;
  }
}

}  // namespace

Instance::Instance(std::string function, std::string generation, uint32_t memory_mb, pid_t pid,
                   int channel_fd, int log_fd, std::unique_ptr<sandbox::Cgroup> cgroup)
    : last_used(Clock::now()),
      function_(std::move(function)),
      generation_(std::move(generation)),
      memory_mb_(memory_mb),
      pid_(pid),
      channel_fd_(channel_fd),
      log_fd_(log_fd),
      cgroup_(std::move(cgroup)) {}

Instance::~Instance() { Destroy(); }

void Instance::Destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  dead_ = true;
  // The instance is its pid namespace's init: killing it kills everything it started.
  if (!reaped_) {
    if (!killed_) kill(pid_, SIGKILL);
    // A frozen instance (v1) dies only once thawed; waitpid would wait for good.
    if (parked_ && cgroup_) (void)cgroup_->Thaw();
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  close(channel_fd_);
  close(log_fd_);
  if (cgroup_) {
    if (auto s = cgroup_->Destroy(); !s)
      log::Warning("instance " + std::to_string(pid_) + ": " + s.error().ToString());
  }
  // Its pid namespace's init is reaped: nothing of it can touch the area or the network any more.
  tmp_.Release();
  netns_.Release();
}

void Instance::Kill() {
  if (!reaped_ && !killed_) kill(pid_, SIGKILL);
  killed_ = true;
}

void Instance::Park() {
  if (parked_ || dead_ || !cgroup_) return;
  if (auto s = cgroup_->Freeze(); !s) {
    log::Warning("instance " + std::to_string(pid_) + " not frozen while idle: " + s.error().ToString());
    return;
  }
  parked_ = true;
}

Status Instance::Unpark() {
  if (!parked_) return {};
  if (auto s = cgroup_->Thaw(); !s) return s;
  parked_ = false;
  return {};
}

void Instance::DrainLog(ChannelResult* into) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(log_fd_, buf, sizeof(buf));
    if (n <= 0) return;  // EAGAIN (non-blocking) or the instance is gone
    if (into) AppendBounded(into, buf, static_cast<size_t>(n));
  }
}

bool Instance::WriteFrame(uint32_t type, const std::string& meta, const std::string& payload,
                          Clock::time_point deadline) {
  zygote::FrameParts frame(type, meta, payload);
  while (!frame.done()) {
    ssize_t n = writev(channel_fd_, frame.next(), frame.count());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      // A big payload: the instance reads while we write; its logs are drained meanwhile.
      if (Wait(deadline, nullptr, POLLOUT) == Read::kTimeout) return false;
      continue;
    }
    frame.Advance(static_cast<size_t>(n));
  }
  return true;
}

Instance::Read Instance::Wait(Clock::time_point deadline, ChannelResult* logs, short channel_events) {
  // Drains the instance's output meanwhile, so that a full log pipe never stalls it.
  for (;;) {
    // A hung-up output is polled no more (an instance that closed it would make this spin).
    pollfd p[2] = {{channel_fd_, channel_events, 0}, {log_closed_ ? -1 : log_fd_, POLLIN, 0}};
    int rc = poll(p, 2, MillisUntil(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return Read::kTimeout;
    if (p[1].revents & (POLLIN | POLLHUP)) DrainLog(logs);
    if (p[1].revents & (POLLHUP | POLLERR)) log_closed_ = true;
    if (rc < 0 || p[0].revents) return Read::kFrame;
  }
}

Instance::Read Instance::Fill(Clock::time_point deadline, ChannelResult* logs,
                             std::chrono::microseconds spin) {
  if (in_.empty()) in_.resize(kReadAhead);
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_end_ == in_.size()) {  // only a header's few bytes can be left: to the front
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  const auto spin_until = spin.count() > 0 ? Clock::now() + spin : Clock::time_point();
  for (;;) {
    ssize_t n = read(channel_fd_, in_.data() + in_end_, in_.size() - in_end_);
    if (n > 0) {
      in_end_ += static_cast<size_t>(n);
      return Read::kFrame;
    }
    if (n == 0) return Read::kEof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Read::kEof;
    if (spin.count() > 0 && Clock::now() < spin_until) continue;  // asks again: read is ~1 us
    if (Read r = Wait(deadline, logs); r != Read::kFrame) return r;
  }
}

Instance::Read Instance::TakeExact(char* dst, size_t len, Clock::time_point deadline,
                                   ChannelResult* logs) {
  size_t have = std::min(len, in_end_ - in_begin_);
  if (dst) std::memcpy(dst, in_.data() + in_begin_, have);
  in_begin_ += have;
  // The rest of a large frame: straight into its place (or dropped), never through in_.
  char scratch[16384];
  while (have < len) {
    size_t room = dst ? len - have : std::min(sizeof(scratch), len - have);
    ssize_t n = read(channel_fd_, dst ? dst + have : scratch, room);
    if (n > 0) {
      have += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return Read::kEof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Read::kEof;
    if (Read r = Wait(deadline, logs); r != Read::kFrame) return r;
  }
  return Read::kFrame;
}

Instance::Read Instance::ReadFrame(Clock::time_point deadline, uint32_t* type, std::string* meta,
                                   std::string* payload, ChannelResult* logs,
                                   std::chrono::microseconds spin) {
  oversized_result_bytes_ = 0;
  // One read usually brings a whole small frame (header, meta, payload); bytes past it (the
  // next frame's) stay in in_ for the next call.
  while (in_end_ - in_begin_ < sizeof(zygote::FrameHeader)) {
    if (Read r = Fill(deadline, logs, spin); r != Read::kFrame) return r;
    spin = std::chrono::microseconds(0);
  }
  zygote::FrameHeader h;
  std::memcpy(&h, in_.data() + in_begin_, sizeof(h));
  in_begin_ += sizeof(h);
  // A result past Lambda's limit is read and dropped (bounded by the deadline), so that the
  // invocation gets Function.ResponseSizeTooLarge and a healthy instance lives on.
  if (h.type == static_cast<uint32_t>(zygote::FrameType::kResult) &&
      h.meta_len <= zygote::kMaxMetaBytes && h.payload_len > zygote::kMaxPayloadBytes)
    oversized_result_bytes_ = h.payload_len;
  else if (!ValidFrameFromInstance(h))
    return Read::kBad;
  meta->resize(h.meta_len);
  if (Read r = TakeExact(meta->data(), h.meta_len, deadline, logs); r != Read::kFrame) return r;
  payload->resize(oversized_result_bytes_ ? 0 : h.payload_len);
  if (Read r = TakeExact(oversized_result_bytes_ ? nullptr : payload->data(), h.payload_len,
                         deadline, logs);
      r != Read::kFrame)
    return r;
  *type = h.type;
  return Read::kFrame;
}

std::string Instance::ReapExited() {
  // It closed its channel while exiting; the exit itself follows within microseconds.
  for (int i = 0; i < 50 && !reaped_; ++i) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return zygote::DescribeExit(status);
    }
    if (r < 0 && errno != EINTR) return "";
    usleep(1000);
  }
  return "";
}

Outcome Instance::DeathOutcome() {
  if (cgroup_) {
    if (auto stats = cgroup_->ReadStats(); stats.ok() && stats->oom_kills > 0)
      return Outcome::kOutOfMemory;
  }
  return Outcome::kCrashed;
}

Status Instance::ReadSetup(Clock::time_point deadline, Stages* stages) {
  uint32_t type = 0;
  std::string meta, payload;
  ChannelResult logs;
  auto t_wait = Clock::now();
  Read r = ReadFrame(deadline, &type, &meta, &payload, &logs);
  if (r != Read::kFrame || type != static_cast<uint32_t>(zygote::FrameType::kSetup) ||
      payload.size() != sizeof(sandbox::SetupReport)) {
    Destroy();
    return MakeError("sandbox setup", r == Read::kTimeout ? "timed out" : "no setup report");
  }
  sandbox::SetupReport report;
  memcpy(&report, payload.data(), sizeof(report));
  for (uint32_t i = 0; i < report.n_timings && i < static_cast<uint32_t>(sandbox::SetupStep::kCount); ++i)
    stages->emplace_back(sandbox::SetupStepName(static_cast<sandbox::SetupStep>(report.timings[i].step)),
                         report.timings[i].micros / 1000.0);
  if (!report.ok) {
    Destroy();
    return Error{std::string("sandbox setup step ") +
                     sandbox::SetupStepName(static_cast<sandbox::SetupStep>(report.failed_step)),
                 report.err, {}};
  }
  // The wait beyond the child's own step times: scheduling and copy-on-write faults after fork.
  double steps_ms = 0;
  for (uint32_t i = 0; i < report.n_timings && i < static_cast<uint32_t>(sandbox::SetupStep::kCount); ++i)
    steps_ms += report.timings[i].micros / 1000.0;
  stages->emplace_back("setup_other",
                       std::max(0.0, std::chrono::duration<double, std::milli>(Clock::now() - t_wait).count() - steps_ms));
  setup_read_ = true;
  return {};
}

Status Instance::AwaitSetup(Clock::time_point deadline, Stages* stages) {
  if (auto s = ReadSetup(deadline, stages); !s) return s;
  forked_ahead_ = true;
  return {};
}

Status Instance::AwaitBoot(Clock::time_point deadline, Stages* stages) {
  if (!setup_read_)
    if (auto s = ReadSetup(deadline, stages); !s) return s;
  auto t0 = Clock::now();
  uint32_t type = 0;
  std::string meta, payload;
  ChannelResult logs;
  Read r = ReadFrame(deadline, &type, &meta, &payload, &logs);
  if (r != Read::kFrame || type != static_cast<uint32_t>(zygote::FrameType::kBooted) ||
      !ParseBootedMeta(meta)) {
    Destroy();
    // An init error here is the runtime failing to start (e.g. its interpreter is missing).
    auto failed = type == static_cast<uint32_t>(zygote::FrameType::kInitError) ? ParseInitErrorMeta(meta)
                                                                               : std::nullopt;
    return MakeError("runtime boot", r == Read::kTimeout ? "timed out"
                                     : failed            ? failed->body
                                     : r == Read::kFrame ? "no boot report"
                                                         : "the runtime exited while booting: " +
                                                               logs.output.substr(0, 512));
  }
  booted_ = true;
  stages->emplace_back("runtime_boot", std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  return {};
}

Status Instance::Prepare(const nlohmann::json& init, Clock::time_point deadline) {
  if (!WriteFrame(static_cast<uint32_t>(zygote::FrameType::kPrepare), init.dump(), {}, deadline)) {
    Destroy();
    return MakeError("instance prepare", "the instance closed its channel");
  }
  // Its answer, once the environment is set up and the handler's module compiled: until then it
  // is not ready (its work would run beside the start that took it).
  uint32_t type = 0;
  std::string meta, payload;
  if (Read r = ReadFrame(deadline, &type, &meta, &payload, nullptr);
      r != Read::kFrame || type != static_cast<uint32_t>(zygote::FrameType::kPrepared)) {
    Destroy();
    return MakeError("instance prepare", r == Read::kTimeout ? "no answer to its init message in time"
                                                             : "it did not answer its init message as kPrepared");
  }
  prepared_ = true;
  return {};
}

void Instance::AssignTo(std::string function, std::string generation, uint32_t memory_mb) {
  function_ = std::move(function);
  generation_ = std::move(generation);
  memory_mb_ = memory_mb;
}

Status Instance::Start(const nlohmann::json& init, Clock::time_point deadline, Stages* stages,
                       double* init_ms, ChannelResult* init_error) {
  static const std::string kPrepared = R"({"prepared":true})";
  if (!WriteFrame(static_cast<uint32_t>(zygote::FrameType::kInit), prepared_ ? kPrepared : init.dump(), {},
                  deadline)) {
    Destroy();
    return MakeError("instance start", "the instance closed its channel before init");
  }
  if (!setup_read_)
    if (auto s = ReadSetup(deadline, stages); !s) return s;
  uint32_t type = 0;
  std::string meta, payload;
  auto t_setup = Clock::now();
  Read r = ReadFrame(deadline, &type, &meta, &payload, init_error);
  double boot_ms = 0;
  if (r == Read::kFrame && type == static_cast<uint32_t>(zygote::FrameType::kBooted) && !booted_ &&
      ParseBootedMeta(meta)) {
    // A runtime that boots after the fork (Node, cold): its boot is this start's.
    booted_ = true;
    boot_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_setup).count();
    stages->emplace_back("runtime_boot", boot_ms);
    r = ReadFrame(deadline, &type, &meta, &payload, init_error);
  }
  double ready_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_setup).count() - boot_ms;
  if (r != Read::kFrame) {
    Outcome why = r == Read::kTimeout ? Outcome::kTimeout : DeathOutcome();
    Destroy();
    init_error->outcome = why;
    init_error->body = nlohmann::json{{"errorMessage", r == Read::kTimeout
                                                           ? "Function init timed out"
                                                           : "Runtime exited during init"},
                                      {"errorType", why == Outcome::kOutOfMemory
                                                        ? "Runtime.OutOfMemory"
                                                        : "Runtime.ExitError"}}.dump();
    return {};
  }
  // Only a well-formed ready or init error counts; anything else is the function breaking the
  // protocol: its init fails (a function error, not the service's).
  std::optional<InitErrorMeta> init_failed;
  std::optional<double> ready_us;
  if (type == static_cast<uint32_t>(zygote::FrameType::kInitError)) init_failed = ParseInitErrorMeta(meta);
  if (type == static_cast<uint32_t>(zygote::FrameType::kReady)) ready_us = ParseReadyMeta(meta);
  if (!init_failed && !ready_us) {
    Destroy();
    init_error->outcome = Outcome::kCrashed;
    init_error->body = nlohmann::json{{"errorMessage", "Runtime broke the channel protocol during init"},
                                      {"errorType", "Runtime.ExitError"}}.dump();
    return {};
  }
  double init_duration = (init_failed ? init_failed->init_us : *ready_us) / 1000.0;
  *init_ms = init_duration;
  stages->emplace_back("init", init_duration);
  // The runner's own start-up parts (optional; a runner may not report them).
  double after_fork = 0, env = 0;
  if (ready_us) {
    auto m = nlohmann::json::parse(meta, nullptr, false);
    if (m.is_object()) {
      auto number = [&](const char* key) {
        auto it = m.find(key);
        return it != m.end() && it->is_number() ? std::max(0.0, it->get<double>()) / 1000.0 : 0.0;
      };
      after_fork = forked_ahead_ ? 0 : number("after_fork_us");  // done before this start
      env = number("env_us");
    }
  }
  stages->emplace_back("runner_after_fork", after_fork);
  stages->emplace_back("runner_env", env);
  stages->emplace_back("runner_other", std::max(0.0, ready_ms - init_duration - after_fork - env));
  if (init_failed) {
    init_error->outcome = Outcome::kUnhandled;
    init_error->body = std::move(init_failed->body);
    Destroy();
    return {};
  }
  ResetUsage();  // init's CPU is not the first invocation's; its memory peak counts from here
  return {};
}

Status Instance::Resume(Clock::time_point deadline) {
  uint32_t type = 0;
  std::string meta, payload;
  if (!WriteFrame(static_cast<uint32_t>(zygote::FrameType::kRestored), "{}", {}, deadline)) {
    Destroy();
    return MakeError("restore", "the restored instance closed its channel");
  }
  Read r = ReadFrame(deadline, &type, &meta, &payload, nullptr);
  if (r != Read::kFrame || type != static_cast<uint32_t>(zygote::FrameType::kReady) || !ParseReadyMeta(meta)) {
    Destroy();
    return MakeError("restore", r == Read::kTimeout ? "the restored instance did not answer"
                                                    : "the restored instance did not say ready");
  }
  ResetUsage();  // criu's own work in the cgroup is not the first invocation's
  return {};
}

ChannelResult Instance::Invoke(const std::string& request_id, int64_t deadline_epoch_ms,
                               const std::string& payload, Clock::time_point deadline,
                               const std::string& invoked_arn, std::chrono::microseconds spin) {
  ChannelResult result;
  DrainLog(nullptr);  // output left over from before this invocation is not its log
  nlohmann::json meta{{"request_id", request_id}, {"deadline_ms", deadline_epoch_ms}};
  if (!invoked_arn.empty()) meta["arn"] = invoked_arn;
  uint32_t type = 0;
  std::string rmeta;
  Read r = Read::kEof;
  if (WriteFrame(static_cast<uint32_t>(zygote::FrameType::kInvoke), meta.dump(), payload,
                 deadline)) {
    timeline::Mark(timeline::Point::kSent);
    r = ReadFrame(deadline, &type, &rmeta, &result.body, &result, spin);
    timeline::Mark(timeline::Point::kReceived);
  } else if (Clock::now() >= deadline)
    r = Read::kTimeout;
  if (r == Read::kFrame && type == static_cast<uint32_t>(zygote::FrameType::kResult)) {
    DrainLog(&result);
    if (auto m = ParseResultMeta(rmeta)) {
      result.outcome = m->ok ? Outcome::kSuccess : Outcome::kUnhandled;
      if (oversized_result_bytes_ || result.body.size() > kMaxResponseBytes) {
        size_t size = oversized_result_bytes_ ? oversized_result_bytes_ : result.body.size();
        std::string message = "Response payload size (" + std::to_string(size) +
                              " bytes) exceeded maximum allowed payload size (" +
                              std::to_string(kMaxResponseBytes) + " bytes).";
        result.outcome = Outcome::kUnhandled;
        result.body = nlohmann::json{{"errorMessage", message},
                                     {"errorType", "Function.ResponseSizeTooLarge"}}.dump();
        if (!result.output.empty() && result.output.back() != '\n') result.output += '\n';
        result.output += "[ERROR] Function.ResponseSizeTooLarge: " + message + "\n";
      }
      result.handler_ms = m->handler_us / 1000.0;
      last_used = Clock::now();
      if (after_first_answer_ && !m->last) std::exchange(after_first_answer_, nullptr)(pid_);
      if (m->last) {
        // Its runtime has exited: the result stands (it says why), unless memory ran out.
        dead_ = true;  // retired, never reused
        if (DeathOutcome() == Outcome::kOutOfMemory) {
          result.outcome = Outcome::kOutOfMemory;
          result.body.clear();
        }
      }
      return result;
    }
    r = Read::kBad;
  }
  DrainLog(&result);
  if (r == Read::kEof) result.exit_reason = ReapExited();
  result.outcome = r == Read::kTimeout ? Outcome::kTimeout
                   : r == Read::kEof   ? DeathOutcome()
                                       : Outcome::kCrashed;
  result.body.clear();
  Destroy();
  return result;
}

bool Instance::QuietWhileIdle() {
  pollfd p{channel_fd_, POLLIN, 0};
  return !dead_ && in_begin_ == in_end_ && poll(&p, 1, 0) == 0;
}

void Instance::ResetUsage() {
  (void)TakeUsage();
  if (cgroup_) (void)cgroup_->ResetPeak();
}

Instance::Usage Instance::TakeUsage() {
  Usage u;
  if (!cgroup_) return u;
  auto stats = cgroup_->TakeUsage();
  if (!stats.ok()) return u;
  u.peak_memory_mb = (stats->memory_peak_bytes + (1 << 20) - 1) >> 20;
  u.cpu_ms = static_cast<double>(stats->cpu_usage_ns - std::min(cpu_ns_seen_, stats->cpu_usage_ns)) / 1e6;
  cpu_ns_seen_ = stats->cpu_usage_ns;
  return u;
}

bool ValidFrameFromInstance(const zygote::FrameHeader& h) {
  return h.meta_len <= zygote::kMaxMetaBytes && h.payload_len <= zygote::kMaxPayloadBytes &&
         h.type >= static_cast<uint32_t>(zygote::FrameType::kSetup) &&
         (h.type <= static_cast<uint32_t>(zygote::FrameType::kBooted) ||
          h.type == static_cast<uint32_t>(zygote::FrameType::kPrepared));
}

namespace {
// A JSON object, or nothing; never throws.
std::optional<nlohmann::json> ParseObject(std::string_view meta) {
  auto m = nlohmann::json::parse(meta, nullptr, false);
  if (!m.is_object()) return std::nullopt;
  return m;
}
// A present field of the wrong type, or a negative duration, is a broken instance.
bool Micros(const nlohmann::json& m, const char* key, double* out) {
  auto it = m.find(key);
  if (it == m.end()) return true;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) return false;
  *out = it->get<double>();
  return true;
}
}  // namespace

std::optional<ResultMeta> ParseResultMeta(std::string_view meta) {
  auto m = ParseObject(meta);
  if (!m) return std::nullopt;
  ResultMeta out;
  auto ok = m->find("ok"), last = m->find("last");
  if (ok == m->end() || !ok->is_boolean() || !Micros(*m, "handler_us", &out.handler_us))
    return std::nullopt;
  if (last != m->end() && !last->is_boolean()) return std::nullopt;
  out.ok = ok->get<bool>();
  out.last = last != m->end() && last->get<bool>();
  return out;
}

std::optional<double> ParseReadyMeta(std::string_view meta) {
  auto m = ParseObject(meta);
  double init_us = 0;
  if (!m || !Micros(*m, "init_us", &init_us)) return std::nullopt;
  return init_us;
}

std::optional<double> ParseBootedMeta(std::string_view meta) {
  auto m = ParseObject(meta);
  double boot_us = 0;
  if (!m || !Micros(*m, "boot_us", &boot_us)) return std::nullopt;
  return boot_us;
}

std::optional<InitErrorMeta> ParseInitErrorMeta(std::string_view meta) {
  auto m = ParseObject(meta);
  InitErrorMeta out;
  if (!m || !Micros(*m, "init_us", &out.init_us)) return std::nullopt;
  auto message = m->find("errorMessage"), type = m->find("errorType");
  if (message == m->end() || !message->is_string() || type == m->end() || !type->is_string())
    return std::nullopt;
  // Lambda's shape and nothing else: no forged fields, no depth for the encoder to recurse into.
  nlohmann::json body{{"errorMessage", *message}, {"errorType", *type}};
  // Python's runner sends stackTrace; Node's, as Lambda's Node runtime, trace.
  for (const char* key : {"stackTrace", "trace"}) {
    auto trace = m->find(key);
    if (trace != m->end() && trace->is_array() &&
        std::all_of(trace->begin(), trace->end(), [](const auto& line) { return line.is_string(); }))
      body[key] = *trace;
  }
  out.body = body.dump();
  return out;
}

}  // namespace forklet::core
