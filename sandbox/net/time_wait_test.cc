#include "sandbox/net/time_wait.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "sandbox/net/netns_state.h"

namespace forklet::sandbox::net {
namespace {

// In a namespace of its own: a connection over loopback closed by its client leaves TIME_WAIT,
// which DestroyTimeWait removes (and nothing else is left).
TEST(TimeWait, DestroysTheNamespacesConnectionsInTimeWait) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare(CLONE_NEWNET)";
  uint64_t before = 0, after = 99;
  Result<int> destroyed = MakeError("", "not run");
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) return;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    memcpy(ifr.ifr_name, "lo", 3);
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
    close(s);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    (void)!bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    (void)!listen(listener, 1);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)!connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    int server = accept(listener, nullptr, nullptr);
    close(client);  // the side that closes first keeps the TIME_WAIT
    usleep(20000);
    close(server);
    close(listener);
    usleep(20000);
    if (auto st = ReadNetnsState(); st) before = st->time_wait;
    destroyed = DestroyTimeWait();
    if (auto st = ReadNetnsState(); st) after = st->time_wait;
  }).join();
  EXPECT_EQ(before, 1u);
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().ToString();
  EXPECT_EQ(*destroyed, 1);
  EXPECT_EQ(after, 0u);
}

}  // namespace
}  // namespace forklet::sandbox::net
