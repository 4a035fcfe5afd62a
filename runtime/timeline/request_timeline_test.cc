#include "runtime/timeline/request_timeline.h"

#include <gtest/gtest.h>

#include <thread>

namespace forklet::timeline {
namespace {

void OneRequest(bool warm, bool complete, int runner_sleep_us) {
  Begin();
  for (auto p : {Point::kParsed, Point::kRouted, Point::kAdmitted, Point::kSent}) Mark(p);
  std::this_thread::sleep_for(std::chrono::microseconds(runner_sleep_us));
  Mark(Point::kReceived);
  if (complete) Mark(Point::kBilled);
  if (warm) MarkWarm("python3");
  End();
}

TEST(TimelineTest, OnlyCompleteWarmInvocationsCountAndEachStageIsItsOwn) {
  Reset();
  OneRequest(false, true, 0);   // a cold start or another route: not the warm path
  OneRequest(true, false, 0);   // a warm one that never reached billing (e.g. refused)
  for (int i = 0; i < 10; ++i) OneRequest(true, true, 2000);
  auto all = Summary();
  ASSERT_EQ(all.size(), 1u);
  auto s = all["python3"];
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(s[0].name, "parse");
  EXPECT_EQ(s[4].name, "runner");
  for (const auto& st : s) EXPECT_EQ(st.n, 10u) << st.name;
  EXPECT_GE(s[4].p50_us, 2000);  // the sleep is the runner's
  EXPECT_LT(s[5].p50_us, 2000);  // not billing's
}

TEST(TimelineTest, ThreadsKeepTheirOwnMarks) {
  Reset();
  std::thread a([] { for (int i = 0; i < 50; ++i) OneRequest(true, true, 0); });
  std::thread b([] { for (int i = 0; i < 50; ++i) OneRequest(false, true, 0); });
  a.join();
  b.join();
  EXPECT_EQ(Summary()["python3"][0].n, 50u);
}

}  // namespace
}  // namespace forklet::timeline
