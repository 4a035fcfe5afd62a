#include "sandbox/net/netns_state.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace forklet::sandbox::net {
namespace {

TEST(NetnsState, ParsesSockstatOfBothFamilies) {
  NetnsState s;
  ASSERT_TRUE(ParseSockstat("sockets: used 3\n"
                            "TCP: inuse 1 orphan 7 tw 2 alloc 9 mem 143\n"
                            "UDP: inuse 1 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
                            &s));
  ASSERT_TRUE(ParseSockstat("TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 1\nFRAG6: inuse 1 memory 9\n", &s));
  EXPECT_EQ(s.sockets, 3u);
  EXPECT_EQ(s.inet, 4u);       // TCP, UDP, TCP6, RAW6; never the host-wide orphan or alloc
  EXPECT_EQ(s.time_wait, 2u);
  EXPECT_EQ(s.fragments, 1u);
  EXPECT_FALSE(s.quiet());
  NetnsState none;
  EXPECT_FALSE(ParseSockstat("", &none));
  EXPECT_TRUE(none.quiet());
}

TEST(NetnsState, ParsesInterfacesAndRoutes) {
  EXPECT_EQ(ParseInterfaces("Inter-|   Receive\n face |bytes    packets\n  eth0: 1 2 3\n    lo: 0 0 0\n"),
            (std::vector<std::string>{"eth0", "lo"}));
  EXPECT_EQ(CountRoutes("Iface\tDestination\tGateway\n"), 0u);
  EXPECT_EQ(CountRoutes("Iface\tDestination\tGateway\neth0\t00000000\t0100E70A\neth0\t0000E70A\t00000000\n"), 2u);
}

// A namespace of its own: empty as made, its sockets counted while they live.
TEST(NetnsState, ReadsTheCallingThreadsNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare(CLONE_NEWNET)";
  Result<NetnsState> fresh = MakeError("", ""), busy = MakeError("", "");
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) return;
    fresh = ReadNetnsState();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    (void)!bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    (void)!listen(s, 1);
    busy = ReadNetnsState();
    close(s);
  }).join();
  ASSERT_TRUE(fresh.ok()) << fresh.error().ToString();
  EXPECT_TRUE(fresh->quiet());
  EXPECT_EQ(fresh->interfaces, std::vector<std::string>{"lo"});
  EXPECT_EQ(fresh->ipv4_routes, 0u);
  ASSERT_TRUE(busy.ok()) << busy.error().ToString();
  EXPECT_EQ(busy->sockets, 1u);
  EXPECT_EQ(busy->inet, 1u);
  EXPECT_FALSE(busy->quiet());
}

}  // namespace
}  // namespace forklet::sandbox::net
