// The instance channel: one invoke frame out and one result frame back over a stream
// socketpair, with a forked echo process standing in for the runner (frames as zygote/channel.h).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <benchmark/benchmark.h>

#include "zygote/channel.h"
#include "zygote/frame_parts.h"

namespace {

using forklet::zygote::FrameHeader;
using forklet::zygote::FrameParts;
using forklet::zygote::FrameType;

bool ReadAll(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFrame(int fd, uint32_t type, const std::string& meta, const std::string& payload) {
  FrameParts frame(type, meta, payload);
  while (!frame.done()) {
    ssize_t n = writev(fd, frame.next(), frame.count());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    frame.Advance(static_cast<size_t>(n));
  }
  return true;
}

// Reads one frame (as the daemon does: poll, then read).
bool ReadFrame(int fd, std::string* meta, std::string* payload) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return false;
  FrameHeader h;
  if (!ReadAll(fd, &h, sizeof(h))) return false;
  meta->resize(h.meta_len);
  payload->resize(h.payload_len);
  return ReadAll(fd, meta->data(), h.meta_len) && ReadAll(fd, payload->data(), h.payload_len);
}

// The runner's part: read an invoke frame, answer with a small result.
[[noreturn]] void Echo(int fd) {
  std::string meta, payload;
  const std::string rmeta = R"({"ok": true, "handler_us": 3})";
  while (ReadFrame(fd, &meta, &payload))
    if (!WriteFrame(fd, static_cast<uint32_t>(FrameType::kResult), rmeta, "null")) break;
  _exit(0);
}

void BM_ChannelRoundTrip(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    Echo(sv[1]);
  }
  close(sv[1]);
  const std::string meta = R"({"request_id":"3f1c2a9e-8b7d-4c1e-9f00-0123456789ab","deadline_ms":1760000000000})";
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  std::string rmeta, rpayload;
  for (auto _ : state) {
    if (!WriteFrame(sv[0], static_cast<uint32_t>(FrameType::kInvoke), meta, payload) ||
        !ReadFrame(sv[0], &rmeta, &rpayload)) {
      state.SkipWithError("the echo process went away");
      break;
    }
  }
  close(sv[0]);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ChannelRoundTrip)->Arg(2)->Arg(1024)->Arg(1 << 20)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
