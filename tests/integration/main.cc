// Integration tests: real daemons, real clients. After the suite nothing of forklet may remain.
#include <gtest/gtest.h>

#include "tests/integration/daemon.h"

namespace {
class NoLeftovers : public ::testing::Environment {
 public:
  void TearDown() override {
    auto left = forklet::testing::Leftovers();
    for (const auto& l : left) ADD_FAILURE() << "left behind: " << l;
  }
};
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new NoLeftovers);
  return RUN_ALL_TESTS();
}
