// Blocking frame I/O on the instance's channel; see runner_channel.h.
#include "lang-runners/zygote/runner_channel.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "sandbox/child_setup.h"
#include "zygote/frame_parts.h"

namespace forklet::runner {
namespace {

using nlohmann::json;
constexpr int kChannel = sandbox::kChannelFd;

bool ReadExact(void* dst, size_t len) {
  char* p = static_cast<char*>(dst);
  while (len > 0) {
    ssize_t n = read(kChannel, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::optional<Frame> ReadFrame() {
  zygote::FrameHeader h{};
  if (!ReadExact(&h, sizeof(h))) return std::nullopt;
  if (h.meta_len > zygote::kMaxMetaBytes || h.payload_len > zygote::kMaxPayloadBytes)
    return std::nullopt;
  std::string meta(h.meta_len, '\0');
  Frame f{static_cast<zygote::FrameType>(h.type), json::object(), std::string(h.payload_len, '\0')};
  if (!ReadExact(meta.data(), meta.size()) || !ReadExact(f.payload.data(), f.payload.size()))
    return std::nullopt;
  if (!meta.empty()) {
    f.meta = json::parse(meta, nullptr, false);
    if (!f.meta.is_object()) return std::nullopt;
  }
  return f;
}

bool WriteFrame(zygote::FrameType type, const json& meta, std::string_view payload) {
  std::string m = Dump(meta);
  zygote::FrameParts frame(static_cast<uint32_t>(type), m, payload);
  while (!frame.done()) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(frame.next());
    msg.msg_iovlen = static_cast<size_t>(frame.count());
    ssize_t n = sendmsg(kChannel, &msg, MSG_NOSIGNAL);  // a closed channel is not a SIGPIPE
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    frame.Advance(static_cast<size_t>(n));
  }
  return true;
}

std::optional<Init> ReadInit() {
  auto f = ReadFrame();
  if (!f || f->type != zygote::FrameType::kInit) return std::nullopt;
  const json& m = f->meta;
  Init init;
  init.function = m.value("function", "");
  init.handler = m.value("handler", "");
  init.arn = m.value("arn", "");
  init.memory_mb = m.value("memory_mb", 0u);
  init.timeout_s = m.value("timeout_s", 0u);
  init.env = m.value("env", json::object());
  if (!init.env.is_object()) init.env = json::object();
  return init;
}

void ApplyEnvironment(const json& env) {
  clearenv();
  for (const auto& [k, v] : env.items())
    if (v.is_string()) setenv(k.c_str(), v.get_ref<const std::string&>().c_str(), 1);
}

std::optional<Invoke> AsInvoke(Frame frame) {
  if (frame.type != zygote::FrameType::kInvoke) return std::nullopt;
  auto id = frame.meta.find("request_id");
  auto deadline = frame.meta.find("deadline_ms");
  if (id == frame.meta.end() || !id->is_string() || deadline == frame.meta.end() ||
      !deadline->is_number_integer())
    return std::nullopt;
  auto arn = frame.meta.find("arn");
  return Invoke{id->get<std::string>(), deadline->get<int64_t>(), std::move(frame.payload),
                arn != frame.meta.end() && arn->is_string() ? arn->get<std::string>() : ""};
}

json ErrorBody(std::string_view type, std::string_view message) {
  return json{{"errorMessage", message}, {"errorType", type}};
}

std::string ResponseTooLargeBody() {
  return Dump(ErrorBody("Function.ResponseSizeTooLarge",
                        "Response payload size exceeded maximum allowed payload size (" +
                            std::to_string(kMaxResponseBytes) + " bytes)."));
}

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool SendReady(uint64_t init_us) {
  fflush(nullptr);
  return WriteFrame(zygote::FrameType::kReady, json{{"init_us", init_us}});
}

bool SendInitError(std::string_view type, std::string_view message, uint64_t init_us) {
  // As Lambda's runtimes do, the init error is in the function's log too.
  fprintf(stderr, "[ERROR] %.*s: %.*s\n", static_cast<int>(type.size()), type.data(),
          static_cast<int>(message.size()), message.data());
  fflush(nullptr);
  json meta = ErrorBody(type, message);
  meta["init_us"] = init_us;
  return WriteFrame(zygote::FrameType::kInitError, meta);
}

bool SendResult(bool ok, uint64_t handler_us, std::string_view body, bool last) {
  fflush(nullptr);
  json meta{{"ok", ok}, {"handler_us", handler_us}};
  if (last) meta["last"] = true;
  return WriteFrame(zygote::FrameType::kResult, meta, body);
}

uint64_t MonotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace forklet::runner
