// A forkletd whose start fails says why and leaves nothing on the host: bad access keys are found
// before anything is made, and a failure after the cgroup tree, the function network and the
// zygotes exist (the API's port is taken) tears them down on the way out.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
namespace fs = std::filesystem;

// A state dir of this test's own, known to Leftovers() by the cgroup root its daemon would use.
std::string StateDir(const std::string& name) {
  std::string dir = "/tmp/forklet-test-state-" + name + "-" + std::to_string(getpid());
  fs::create_directories(dir);
  RememberStateDir(dir);
  return dir;
}

TEST(StartFailures, BadAccessKeysStopTheStartBeforeAnythingIsMade) {
  const std::string state = StateDir("badkeys");
  const std::string file = state + "-keys.json";
  std::ofstream(file) << R"({"keys": [{"access_key_id": "AKIDX", "secret_access_key": "short"}]})";
  auto r = forklet::testing::Run({FORKLETD_PATH, "--config", "", "--listen", "127.0.0.1:0", "--state-dir", state, "--credentials", file});
  fs::remove(file);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("secret_access_key must have at least 8 characters"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("cgroups v"), std::string::npos) << "nothing set up before the keys were read: " << r.err;
  EXPECT_EQ(Leftovers(), std::vector<std::string>{});
  fs::remove_all(state);
}

TEST(StartFailures, ATakenPortStopsTheStartAndWhatWasMadeIsRemoved) {
  int taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(taken, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string listen_on = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const std::string state = StateDir("taken-port");
  auto r = forklet::testing::Run({FORKLETD_PATH, "--config", "", "--listen", listen_on, "--state-dir", state, "--insecure-no-auth",
                "--snapshots", "off"},
               {}, 120);
  close(taken);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(listen_on), std::string::npos) << "the error names the address: " << r.err;
  EXPECT_NE(r.err.find("function network: bridge"), std::string::npos)
      << "the failure came after the network was made (what this test is about): " << r.err;
  EXPECT_EQ(Leftovers(), std::vector<std::string>{});
  fs::remove_all(state);
}

}  // namespace
}  // namespace forklet::testing
