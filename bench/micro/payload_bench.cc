// Large payloads: one request/response round trip of N bytes each way over the instance channel's
// socketpair (frames as zygote/channel.h) against a per-payload shared memory region (a memfd
// mapped with Boost.Interprocess, passed by SCM_RIGHTS beside a small frame), and one memcpy of N.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <benchmark/benchmark.h>
#include <boost/interprocess/mapped_region.hpp>

#include "zygote/channel.h"
#include "zygote/frame_parts.h"

namespace {

namespace bip = boost::interprocess;
using forklet::zygote::FrameHeader;
using forklet::zygote::FrameParts;
using forklet::zygote::FrameType;

const std::string kInvokeMeta =
    R"({"request_id":"3f1c2a9e-8b7d-4c1e-9f00-0123456789ab","deadline_ms":1760000000000})";

// A memfd as a Boost.Interprocess MemoryMappable (mapped_region maps anything that has one).
class FdMappable {
 public:
  explicit FdMappable(int fd) : fd_(fd) {}
  bip::mapping_handle_t get_mapping_handle() const {
    return bip::ipcdetail::mapping_handle_from_file_handle(fd_);
  }

 private:
  int fd_;
};

bip::mapped_region Map(int fd, size_t n, bool populate) {
  return bip::mapped_region(FdMappable(fd), bip::read_write, 0, n, nullptr,
                            populate ? MAP_POPULATE : bip::default_map_options);
}

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

// Writes one frame; with pass_fd >= 0 the fd rides along the first sendmsg (SCM_RIGHTS).
bool WriteFrame(int fd, FrameType type, const std::string& meta, const std::string& payload,
                int pass_fd = -1) {
  FrameParts frame(static_cast<uint32_t>(type), meta, payload);
  while (!frame.done()) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(frame.next());
    msg.msg_iovlen = static_cast<size_t>(frame.count());
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    pass_fd = -1;
    frame.Advance(static_cast<size_t>(n));
  }
  return true;
}

// Reads one frame (poll, then the header by recvmsg to catch a passed fd, then the rest).
bool ReadFrame(int fd, std::string* meta, std::string* payload, int* got_fd = nullptr) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return false;
  FrameHeader h;
  iovec iov{&h, sizeof(h)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r;
  do r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (r < 0 && errno == EINTR);
  if (r != static_cast<ssize_t>(sizeof(h))) return false;
  if (got_fd) {
    *got_fd = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        std::memcpy(got_fd, CMSG_DATA(c), sizeof(int));
  }
  meta->resize(h.meta_len);
  payload->resize(h.payload_len);
  return ReadAll(fd, meta->data(), h.meta_len) && ReadAll(fd, payload->data(), h.payload_len);
}

// The runner over the socket: reads the event, answers with a response of the same size.
[[noreturn]] void SocketEcho(int fd) {
  std::string meta, payload;
  const std::string rmeta = R"({"ok": true, "handler_us": 3})";
  while (ReadFrame(fd, &meta, &payload))
    if (!WriteFrame(fd, FrameType::kResult, rmeta, payload)) break;
  _exit(0);
}

// The runner over shared memory: maps the passed region, copies the event out (as a runner makes
// it a string of its language), writes a same-size response into the region, unmaps and closes.
// With `reuse`, the first region passed stays mapped for every later round trip.
[[noreturn]] void ShmEcho(int fd, size_t n, bool populate, bool reuse) {
  std::string meta, payload, event(n, '\0'), response(n, 'y');
  const std::string rmeta = R"({"ok": true, "handler_us": 3, "shm_len": )" + std::to_string(n) + "}";
  bip::mapped_region kept;
  int region_fd = -1;
  while (ReadFrame(fd, &meta, &payload, &region_fd)) {
    if (reuse && region_fd >= 0) {
      kept = Map(region_fd, n, populate);
      close(region_fd);
      region_fd = -1;
    }
    if (reuse && kept.get_address()) {
      std::memcpy(event.data(), kept.get_address(), n);
      std::memcpy(kept.get_address(), response.data(), n);
    } else if (region_fd >= 0) {
      {
        bip::mapped_region region = Map(region_fd, n, populate);
        std::memcpy(event.data(), region.get_address(), n);
        std::memcpy(region.get_address(), response.data(), n);
      }
      close(region_fd);
    } else {
      break;
    }
    if (!WriteFrame(fd, FrameType::kResult, rmeta, "")) break;
  }
  _exit(0);
}

int NewRegion(size_t n) {
  // Sealed against shrinking: a shrunk region would fault (SIGBUS) in the daemon's mapping.
  int fd = memfd_create("forklet-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  if (ftruncate(fd, static_cast<off_t>(n)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Channel {
  int fd = -1;
  pid_t pid = -1;
  ~Channel() {
    if (fd >= 0) close(fd);
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

template <typename Runner>
bool Start(Channel* ch, Runner runner) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  ch->pid = fork();
  if (ch->pid == 0) {
    close(sv[0]);
    runner(sv[1]);
  }
  close(sv[1]);
  ch->fd = sv[0];
  return ch->pid > 0;
}

void BM_PayloadMemcpy(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::string src(n, 'x'), dst(n, '\0');
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

// The event goes out in the invoke frame's payload, the response comes back in the result's.
// Arg 1: SO_SNDBUF/SO_RCVBUF of both ends in bytes (0: the default), fewer wakeups per payload.
void BM_PayloadSocket(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const int buf = static_cast<int>(state.range(1));
  Channel ch;
  if (!Start(&ch, [buf](int fd) {
        if (buf) {
          setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
          setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        }
        SocketEcho(fd);
      }))
    return state.SkipWithError("socketpair/fork");
  if (buf &&
      (setsockopt(ch.fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)) != 0 ||
       setsockopt(ch.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) != 0))
    return state.SkipWithError("SO_SNDBUF/SO_RCVBUF");
  const std::string payload(n, 'x');
  std::string rmeta, response;
  for (auto _ : state) {
    if (!WriteFrame(ch.fd, FrameType::kInvoke, kInvokeMeta, payload) ||
        !ReadFrame(ch.fd, &rmeta, &response) || response.size() != n)
      return state.SkipWithError("the echo process went away");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

// Per round trip, as a sandbox-safe daemon would: a fresh memfd sized to the payload (private to
// this instance and invocation), the event copied in, the fd passed beside an empty invoke frame,
// the response copied out of the region after the result frame, the region unmapped and closed.
// Arg 1: map with MAP_POPULATE (pages allocated in one go instead of one fault per page).
void BM_PayloadShm(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool populate = state.range(1) != 0;
  Channel ch;
  if (!Start(&ch, [&](int fd) { ShmEcho(fd, n, populate, false); }))
    return state.SkipWithError("socketpair/fork");
  const std::string payload(n, 'x');
  const std::string meta = kInvokeMeta.substr(0, kInvokeMeta.size() - 1) +
                           R"(,"shm_len":)" + std::to_string(n) + "}";
  std::string rmeta, rpayload, response(n, '\0');
  for (auto _ : state) {
    int fd = NewRegion(n);
    if (fd < 0) return state.SkipWithError("memfd_create/ftruncate/seal");
    bool ok;
    {
      bip::mapped_region region = Map(fd, n, populate);
      std::memcpy(region.get_address(), payload.data(), n);
      ok = WriteFrame(ch.fd, FrameType::kInvoke, meta, "", fd) &&
           ReadFrame(ch.fd, &rmeta, &rpayload);
      if (ok) std::memcpy(response.data(), region.get_address(), n);
    }
    close(fd);
    if (!ok || response[n - 1] != 'y') return state.SkipWithError("the echo process went away");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

// One region per instance instead (made and mapped once on each side, kept across invocations):
// per round trip only the copies in and out of it and two small frames.
void BM_PayloadShmReused(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Channel ch;
  if (!Start(&ch, [&](int fd) { ShmEcho(fd, n, true, true); }))
    return state.SkipWithError("socketpair/fork");
  int fd = NewRegion(n);
  if (fd < 0) return state.SkipWithError("memfd_create/ftruncate/seal");
  bip::mapped_region region = Map(fd, n, true);
  const std::string payload(n, 'x');
  const std::string meta = kInvokeMeta.substr(0, kInvokeMeta.size() - 1) +
                           R"(,"shm_len":)" + std::to_string(n) + "}";
  std::string rmeta, rpayload, response(n, '\0');
  int pass = fd;
  for (auto _ : state) {
    std::memcpy(region.get_address(), payload.data(), n);
    if (!WriteFrame(ch.fd, FrameType::kInvoke, meta, "", pass) ||
        !ReadFrame(ch.fd, &rmeta, &rpayload))
      return state.SkipWithError("the echo process went away");
    pass = -1;
    std::memcpy(response.data(), region.get_address(), n);
    if (response[n - 1] != 'y') return state.SkipWithError("no response in the region");
  }
  close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

// What a fresh region costs by itself, in one process: memfd, size, seal, map (populated), unmap.
void BM_PayloadRegionSetup(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    int fd = NewRegion(n);
    if (fd < 0) return state.SkipWithError("memfd_create/ftruncate/seal");
    { bip::mapped_region region = Map(fd, n, true); }
    close(fd);
  }
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1 << 10, 64 << 10, 1 << 20, 6 << 20}) b->Arg(n);
}
void SizesBuffers(benchmark::internal::Benchmark* b) {
  for (int64_t buf : {0, 4 << 20})
    for (int64_t n : {1 << 10, 64 << 10, 1 << 20, 6 << 20}) b->Args({n, buf});
}
void SizesPopulate(benchmark::internal::Benchmark* b) {
  for (int64_t populate : {0, 1})
    for (int64_t n : {1 << 10, 64 << 10, 1 << 20, 6 << 20}) b->Args({n, populate});
}

BENCHMARK(BM_PayloadMemcpy)->Apply(Sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PayloadSocket)->Apply(SizesBuffers)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PayloadShm)->Apply(SizesPopulate)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PayloadShmReused)->Apply(Sizes)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PayloadRegionSetup)->Apply(Sizes)->Unit(benchmark::kMicrosecond);

}  // namespace
