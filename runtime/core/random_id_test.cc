// Request ids key the ledger and the event log: no two alike, whichever thread made them.
#include "runtime/core/random_id.h"

#include <gtest/gtest.h>

#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <vector>

namespace forklet::core {
namespace {

TEST(RequestIdTest, HasTheFormOfAVersion4Uuid) {
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRequestId();
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
  }
}

// The daemon serves each connection on a thread of its own and a client may open one per request:
// ids made by 100,000 short-lived threads (one each, as such connections make them) are all
// distinct. A per-thread generator seeded with 32 bits repeats a seed here in most runs (the
// birthday bound: 1e10 pairs over 2^32 seeds), which a soak run met as one ledger row too few.
TEST(RequestIdTest, IdsOfManyShortLivedThreadsAreAllDistinct) {
  constexpr int kThreads = 100'000, kAtOnce = 64;
  std::set<std::string> ids;
  std::mutex mu;
  for (int done = 0; done < kThreads; done += kAtOnce) {
    std::vector<std::thread> batch;
    for (int i = 0; i < kAtOnce; ++i)
      batch.emplace_back([&] {
        std::string id = NewRequestId();
        std::lock_guard lock(mu);
        ids.insert(std::move(id));
      });
    for (auto& t : batch) t.join();
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>((kThreads + kAtOnce - 1) / kAtOnce * kAtOnce));
}

TEST(RequestIdTest, OneThreadNeverRepeatsAcrossItsBufferRefills) {
  std::set<std::string> ids;
  for (int i = 0; i < 100'000; ++i) ids.insert(NewRequestId());
  EXPECT_EQ(ids.size(), 100'000u);
}

}  // namespace
}  // namespace forklet::core
