// Frames on an instance's channel (a stream socket between the daemon and the instance).
// Mirrored by every runner (lang-runners/*); any change here is a protocol version change.
#pragma once

#include <cstdint>

namespace forklet::zygote {

// Each frame: FrameHeader, then meta_len bytes of JSON metadata, then payload_len raw bytes.
struct FrameHeader {
  uint32_t type;
  uint32_t meta_len;
  uint32_t payload_len;
};

enum class FrameType : uint32_t {
  kSetup = 1,      // instance -> daemon, first frame: payload is sandbox::SetupReport
  kInit = 2,       // daemon -> instance: meta {function, handler, memory_mb, timeout_s, env, arn}
  kReady = 3,      // instance -> daemon: meta {init_us}
  kInitError = 4,  // instance -> daemon: meta {errorMessage, errorType, stackTrace?, init_us}
  kInvoke = 5,     // daemon -> instance: meta {request_id, deadline_ms (epoch)}; payload: event
  kResult = 6,     // instance -> daemon: meta {ok, handler_us}; payload: response or error JSON
  kRestored = 7,   // daemon -> restored instance: it was restored from a snapshot; answers kReady
  kBooted = 8,     // instance -> daemon, optional, before READY or INIT_ERROR: meta {boot_us}: a
                   // runtime that boots after the fork (Node) has booted and waits for INIT
  kPrepare = 9,    // daemon -> a Python instance forked ahead of demand, optional, before kInit: meta
                   // as kInit's; it sets up that environment (no function code) while it waits, and
                   // the kInit that starts it carries {"prepared": true}
  kPrepared = 10,  // instance -> daemon: its answer to kPrepare, once that work is done (meta {}):
                   // an instance is ready to be taken only then, so its preparation never competes
                   // with a start or an invocation for the CPU
};

constexpr uint32_t kMaxMetaBytes = 64 * 1024;
constexpr uint32_t kMaxPayloadBytes = 6 * 1024 * 1024 + 1024;  // Lambda's 6 MB, with slack

}  // namespace forklet::zygote
