// Fuzzes what the daemon reads from an instance's channel: a stream of frames (zygote/channel.h)
// checked by the same pure functions runtime/core/instance.cc uses. An instance controls every
// byte; the checks must refuse what is malformed without trusting a length or a type, and what
// they accept must be what the protocol defines.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/core/instance.h"
#include "sandbox/child_setup.h"
#include "zygote/channel.h"
#include "tests/fuzz/fuzz_util.h"

namespace forklet::fuzz {
const char* const kTarget = "channel_frame_fuzz";
}  // namespace forklet::fuzz

namespace {
using forklet::fuzz::Fail;
using namespace forklet;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (in.size() >= sizeof(zygote::FrameHeader)) {
    zygote::FrameHeader h;
    memcpy(&h, in.data(), sizeof(h));
    in.remove_prefix(sizeof(h));
    if (!core::ValidFrameFromInstance(h)) return 0;  // the daemon kills the instance here
    if (h.meta_len > zygote::kMaxMetaBytes || h.payload_len > zygote::kMaxPayloadBytes)
      Fail("accepted a frame over the limits");
    if (in.size() < static_cast<size_t>(h.meta_len) + h.payload_len) return 0;  // still reading
    std::string_view meta = in.substr(0, h.meta_len), payload = in.substr(h.meta_len, h.payload_len);
    in.remove_prefix(static_cast<size_t>(h.meta_len) + h.payload_len);
    switch (static_cast<zygote::FrameType>(h.type)) {
      case zygote::FrameType::kSetup:
        if (payload.size() == sizeof(sandbox::SetupReport)) {
          sandbox::SetupReport report;
          memcpy(&report, payload.data(), sizeof(report));
          constexpr auto kSteps = static_cast<uint32_t>(sandbox::SetupStep::kCount);
          for (uint32_t i = 0; i < report.n_timings && i < kSteps; ++i)
            if (!sandbox::SetupStepName(static_cast<sandbox::SetupStep>(report.timings[i].step)))
              Fail("a setup step without a name");
        }
        break;
      case zygote::FrameType::kReady:
        if (auto us = core::ParseReadyMeta(meta); us && !(*us >= 0)) Fail("a negative init time");
        break;
      case zygote::FrameType::kInitError:
        if (auto e = core::ParseInitErrorMeta(meta)) {
          auto body = nlohmann::json::parse(e->body, nullptr, false);
          if (!body.is_object() || !body["errorMessage"].is_string() || !body["errorType"].is_string() ||
              body.size() > 3)
            Fail("an init error body not in Lambda's shape: " + e->body);
        }
        break;
      case zygote::FrameType::kResult:
        if (auto m = core::ParseResultMeta(meta); m && !(m->handler_us >= 0)) Fail("a negative handler time");
        break;
      default:
        break;  // kInit, kInvoke: framed like the rest; refused where the daemon expects ready or result
    }
  }
  return 0;
}
