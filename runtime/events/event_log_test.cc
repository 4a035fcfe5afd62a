// The event log: what was accepted and not finished survives a new process, compaction keeps
// exactly that and the dead-letter store. (A read-only state dir: tests/integration/events_test.cc.)
#include "runtime/events/event_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace forklet::events {
namespace {

namespace fs = std::filesystem;

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("forklet-eventlog-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    chmod(dir_.c_str(), 0700);
    fs::remove_all(dir_);
  }
  std::shared_ptr<const EventData> Event(const std::string& id, int64_t t, const std::string& payload = "{}") {
    auto d = std::make_shared<EventData>();
    d->id = id;
    d->function = "fn";
    d->payload = payload;
    d->accepted_ms = t;
    return d;
  }
  std::string dir_;
};

TEST_F(EventLogTest, AQualifierSurvivesInPendingAndDeadEvents) {
  {
    auto log = EventLog::Open(dir_);
    ASSERT_TRUE(log);
    auto v = std::make_shared<EventData>(*Event("v", 1));
    v->qualifier = "live";
    ASSERT_TRUE((*log)->Accept(v));
    ASSERT_TRUE((*log)->Accept(Event("latest", 2)));
    auto dead = std::make_shared<EventData>(*Event("d", 3));
    dead->qualifier = "3";
    ASSERT_TRUE((*log)->Accept(dead));
    ASSERT_TRUE((*log)->Dead(DeadEvent{dead, "RetriesExhausted", "", 4, 1}));
  }
  auto log = EventLog::Open(dir_);
  ASSERT_TRUE(log);
  auto r = (*log)->TakeRecovered();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].data->qualifier, "live");
  EXPECT_EQ(r[1].data->qualifier, "");  // $LATEST, as lines written before qualifiers read
  auto dead = (*log)->ListDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].data->qualifier, "3");
}

TEST_F(EventLogTest, PendingEventsSurviveAndFinishedOnesDoNot) {
  {
    auto log = EventLog::Open(dir_);
    ASSERT_TRUE(log) << log.error().ToString();
    ASSERT_TRUE((*log)->Accept(Event("a", 1, R"({"x": "line\nbreak"})")));
    ASSERT_TRUE((*log)->Accept(Event("b", 2)));
    ASSERT_TRUE((*log)->Accept(Event("c", 3)));
    ASSERT_TRUE((*log)->Started("a", 1, 0));
    ASSERT_TRUE((*log)->Finished("b"));
    ASSERT_TRUE((*log)->Started("c", 2, 1));
  }  // no clean shutdown step exists: the file is all there is
  auto log = EventLog::Open(dir_);
  ASSERT_TRUE(log);
  auto r = (*log)->TakeRecovered();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].data->id, "a");
  EXPECT_EQ(r[0].data->payload, R"({"x": "line\nbreak"})");
  EXPECT_EQ(r[0].invocations, 1u);
  EXPECT_EQ(r[1].data->id, "c");
  EXPECT_EQ(r[1].invocations, 2u);
  EXPECT_EQ(r[1].failures, 1u);
  EXPECT_TRUE((*log)->TakeRecovered().empty());
}

TEST_F(EventLogTest, AnIncompleteLastLineIsIgnored) {
  {
    auto log = EventLog::Open(dir_);
    ASSERT_TRUE(log);
    ASSERT_TRUE((*log)->Accept(Event("a", 1)));
  }
  {
    std::ofstream f(dir_ + "/log", std::ios::app);
    f << R"({"op":"A","id":"half","fn":"fn","t":2,"p":"{)";
  }
  auto log = EventLog::Open(dir_);
  ASSERT_TRUE(log);
  auto r = (*log)->TakeRecovered();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].data->id, "a");
}

TEST_F(EventLogTest, DeadLettersPersistAndCanBeRemoved) {
  {
    auto log = EventLog::Open(dir_);
    ASSERT_TRUE(log);
    auto e = Event("a", 1);
    ASSERT_TRUE((*log)->Accept(e));
    ASSERT_TRUE((*log)->Accept(Event("b", 2)));
    ASSERT_TRUE((*log)->Dead(DeadEvent{e, "RetriesExhausted", "boom", 5, 3}));
    ASSERT_TRUE((*log)->Dead(DeadEvent{Event("b", 2), "EventAgeExceeded", "", 6, 0}));
    ASSERT_TRUE((*log)->RemoveDead("b"));
    EXPECT_FALSE((*log)->RemoveDead("nope"));
  }
  auto log = EventLog::Open(dir_);
  ASSERT_TRUE(log);
  EXPECT_TRUE((*log)->TakeRecovered().empty());
  auto dead = (*log)->ListDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].data->id, "a");
  EXPECT_EQ(dead[0].reason, "RetriesExhausted");
  EXPECT_EQ(dead[0].invocations, 3u);
}

TEST_F(EventLogTest, CompactionKeepsOnlyWhatIsLive) {
  auto log = EventLog::Open(dir_, EventLogOptions{.sync = true});
  ASSERT_TRUE(log);
  std::string big(4000, 'x');
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE((*log)->Accept(Event("e" + std::to_string(i), i, "\"" + big + "\"")));
    if (i != 500) {
      ASSERT_TRUE((*log)->Finished("e" + std::to_string(i)));
    }
  }
  auto c = (*log)->counters();
  EXPECT_GT(c.compactions, 1u);
  EXPECT_LT(c.bytes, 2u << 20) << "the log was never rewritten";
  EXPECT_GE(c.syncs, 1u);
  log = EventLog::Open(dir_);
  ASSERT_TRUE(log);
  auto r = (*log)->TakeRecovered();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].data->id, "e500");
}

}  // namespace
}  // namespace forklet::events
