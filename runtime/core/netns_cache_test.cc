#include "runtime/core/netns_cache.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace forklet::core {
namespace {

using namespace std::chrono_literals;

// A new loopback-only namespace (as the pool makes them, less lo's state), its fd, and optionally
// a socket left open in it.
PooledNetns NewNamespace(int* socket_in_it = nullptr) {
  PooledNetns ns;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) return;
    ns.fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (socket_in_it) *socket_in_it = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }).join();
  return ns;
}

ino_t Inode(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}

// Waits until the checker has dealt with what was given (kept or discarded).
NetnsCounts Settled(NetnsCache& cache, uint64_t kept_or_discarded) {
  NetnsCounts c;
  for (int i = 0; i < 200; ++i) {
    c = cache.counts();
    if (c.cached + c.discarded >= kept_or_discarded) break;
    std::this_thread::sleep_for(10ms);
  }
  return c;
}

class NetnsCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for unshare(CLONE_NEWNET)";
  }
};

TEST_F(NetnsCacheTest, GivesANamespaceBackOnlyToItsOwnDeployment) {
  NetnsCache cache(4, 16, std::chrono::seconds(30));
  EXPECT_EQ(cache.Take("f", "gen1").fd, -1);  // the first start: none yet, f's generation noted
  PooledNetns ns = NewNamespace();
  ASSERT_GE(ns.fd, 0);
  const ino_t made = Inode(ns.fd);
  cache.Give("f", "gen1", ns);
  EXPECT_EQ(Settled(cache, 1).cached, 1u);
  EXPECT_EQ(cache.Take("g", "gen1").fd, -1) << "another function";
  EXPECT_EQ(cache.Take("f:1", "gen1").fd, -1) << "another version";
  PooledNetns again = cache.Take("f", "gen1");
  ASSERT_GE(again.fd, 0);
  EXPECT_EQ(Inode(again.fd), made);
  cache.Give("f", "gen1", again);
  EXPECT_EQ(Settled(cache, 1).cached, 1u);
  EXPECT_EQ(cache.Take("f", "gen2").fd, -1) << "a changed or re-created function";
  EXPECT_EQ(cache.counts().cached, 0u) << "the old deployment's namespaces went";
  cache.Give("f", "gen1", NewNamespace());  // an instance of the old deployment ending late
  EXPECT_EQ(cache.counts().cached, 0u);
  EXPECT_EQ(cache.counts().reused, 1u);
}

TEST_F(NetnsCacheTest, DiscardsANamespaceWithASocketLeftAndForgetsAFunction) {
  NetnsCache cache(4, 16, std::chrono::seconds(30));
  (void)cache.Take("f", "g");
  int sock = -1;
  cache.Give("f", "g", NewNamespace(&sock));  // a socket still open in it
  ASSERT_GE(sock, 0);
  auto c = Settled(cache, 1);
  EXPECT_EQ(c.cached, 0u);
  EXPECT_EQ(c.unclean, 1u);
  close(sock);
  cache.Give("f", "g", NewNamespace());
  EXPECT_EQ(Settled(cache, 2).cached, 1u);
  (void)cache.Take("f:2", "g");
  cache.Give("f:2", "g", NewNamespace());
  EXPECT_EQ(Settled(cache, 3).cached, 2u);
  cache.Forget("f");  // every version of f
  EXPECT_EQ(cache.counts().cached, 0u);
  EXPECT_EQ(cache.Take("f", "g").fd, -1);
}

TEST_F(NetnsCacheTest, KeepsAFewPerFunctionAndAFewInAll) {
  NetnsCache cache(2, 3, std::chrono::seconds(30));
  for (const char* f : {"a", "b"}) {
    (void)cache.Take(f, "g");
    for (int i = 0; i < 3; ++i) cache.Give(f, "g", NewNamespace());
  }
  auto c = Settled(cache, 6);
  EXPECT_EQ(c.cached, 3u);
  EXPECT_EQ(c.discarded, 3u);
}

}  // namespace
}  // namespace forklet::core
