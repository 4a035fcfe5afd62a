// The instance's end of its channel (zygote/channel.h) for the C++ runners: blocking frame I/O on
// fd 3 and the frames every runner sends. Runs inside the sandbox, after the fork.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "zygote/channel.h"

namespace forklet::runner {

struct Frame {
  zygote::FrameType type;
  nlohmann::json meta;  // an object (empty when the frame has none)
  std::string payload;
};

// Reads one whole frame, blocking. nullopt when the daemon closed the channel or sent a frame
// out of bounds or with meta that is not a JSON object: the instance should then end.
std::optional<Frame> ReadFrame();
// Writes one whole frame, blocking; false when the daemon has gone.
bool WriteFrame(zygote::FrameType type, const nlohmann::json& meta, std::string_view payload = {});

// What INIT tells an instance about its function.
struct Init {
  std::string function;
  std::string handler;
  std::string arn;
  uint32_t memory_mb = 0;
  uint32_t timeout_s = 0;
  nlohmann::json env;  // an object of strings
};
// Reads the INIT frame (the first frame from the daemon).
std::optional<Init> ReadInit();
// Replaces the process environment by INIT's (and what a runner adds on top).
void ApplyEnvironment(const nlohmann::json& env);

// One INVOKE frame.
struct Invoke {
  std::string request_id;
  int64_t deadline_ms = 0;  // epoch
  std::string event;
  std::string arn;  // the ARN the client invoked (an alias's); empty: the instance's own
};
// Turns a frame into an invocation; nullopt when it is not a well-formed INVOKE.
std::optional<Invoke> AsInvoke(Frame frame);

// Lambda's limit on a response (6 MB and 100 bytes), and the error a larger one becomes.
constexpr size_t kMaxResponseBytes = 6 * 1024 * 1024 + 100;
std::string ResponseTooLargeBody();

// Lambda's error shape: {"errorMessage", "errorType"}.
nlohmann::json ErrorBody(std::string_view type, std::string_view message);
// JSON text of a value whose strings came from a function: invalid UTF-8 is replaced, not thrown.
std::string Dump(const nlohmann::json& value);

// The runner's answers. Each flushes stdio first, so the function's output precedes them.
bool SendReady(uint64_t init_us);
bool SendInitError(std::string_view type, std::string_view message, uint64_t init_us);
// last: the instance ends after this result (the daemon retires it instead of keeping it warm).
bool SendResult(bool ok, uint64_t handler_us, std::string_view body, bool last = false);

uint64_t MonotonicMicros();

}  // namespace forklet::runner
