// Tests of ledger.h: The billing ledger: one SQLite row per finished invocation, in ... (see ledger.h).
#include "runtime/billing/ledger.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace forklet::billing {
namespace {

namespace fs = std::filesystem;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/forklet-ledger-test-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ + "/ledger.db";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_, path_;
};

LedgerRecord Row(const std::string& id, const std::string& fn = "f", int64_t start_ms = 1000) {
  LedgerRecord r;
  r.request_id = id;
  r.function = fn;
  r.runtime = "python3.11";
  r.start_kind = "warm";
  r.outcome = "success";
  r.start_ms = start_ms;
  r.end_ms = start_ms + 2;
  r.duration_ms = 1.27;
  r.latency_ms = 1.5;
  r.billed_ms = 100;
  r.memory_mb = 128;
  r.max_memory_mb = 36;
  r.cpu_ms = 0.9;
  r.mb_ms = 12800;
  r.request_cost_pd = 200000;
  r.compute_cost_pd = 208334;
  return r;
}

int64_t Count(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

TEST_F(LedgerTest, RecordsReadBackAsWritten) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  LedgerRecord in = Row("req-1");
  in.start_kind = "cold";
  in.init_ms = 107.95;
  ASSERT_TRUE((*l)->Record(in).ok());
  auto out = (*l)->Records(0, 1'000'000);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  const LedgerRecord& r = out->front();
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(r.start_kind, "cold");
  EXPECT_EQ(r.outcome, "success");
  EXPECT_DOUBLE_EQ(r.init_ms, 107.95);
  EXPECT_DOUBLE_EQ(r.duration_ms, 1.27);
  EXPECT_EQ(r.billed_ms, 100u);
  EXPECT_EQ(r.max_memory_mb, 36u);
  EXPECT_EQ(r.cost_pd(), 408334);
  // The database is in WAL mode and computes the derived columns.
  EXPECT_EQ(Count(path_, "SELECT cost_pd FROM invocations"), 408334);
  EXPECT_EQ(Count(path_, "SELECT gb_seconds = 0.0125 FROM invocations"), 1);
}

TEST_F(LedgerTest, IsInWalMode) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(LedgerTest, ARequestIdIsRecordedOnce) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->Record(Row("same")).ok());
  ASSERT_TRUE((*l)->Record(Row("same")).ok());  // the log takes it; the table keeps one
  ASSERT_TRUE((*l)->Flush().ok());
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 1);
  EXPECT_EQ((*l)->counters().duplicates, 1u);
  EXPECT_EQ((*l)->counters().rows, 1u);
}

TEST_F(LedgerTest, AMalformedRecordIsRefusedAtOnce) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  LedgerRecord bad = Row("bad");
  bad.outcome = "lost";  // not an outcome the schema knows
  EXPECT_FALSE((*l)->Record(bad).ok());
  LedgerRecord tab = Row("tab\tbed");
  EXPECT_FALSE((*l)->Record(tab).ok());
  EXPECT_TRUE((*l)->Record(Row("good")).ok());
  ASSERT_TRUE((*l)->Flush().ok());
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 1);
}

TEST_F(LedgerTest, OutsideReadersSeeRowsWithinTheFlushInterval) {
  auto l = Ledger::Open(path_, LedgerOptions{std::chrono::milliseconds(20)});
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->Record(Row("soon")).ok());
  for (int i = 0; i < 500 && Count(path_, "SELECT COUNT(*) FROM invocations") == 0; ++i) usleep(10000);
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 1);
}

// A process killed before its log reached SQLite: the next Open moves the log in. A log replayed
// twice (killed between the commit and the unlink) adds nothing; a line cut short is ignored.
TEST_F(LedgerTest, ReplaysWhatAKilledProcessLogged) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto l = Ledger::Open(path_, LedgerOptions{std::chrono::hours(1)});
    if (!l) _exit(2);
    for (const char* id : {"x1", "x2", "x3"})
      if (!(*l)->Record(Row(id)).ok()) _exit(3);
    _exit(0);  // no destructor: as if killed
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 0);
  std::string log;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().filename().string().rfind("ledger.db.log.", 0) == 0 && fs::file_size(e.path()) > 0)
      log = e.path().string();
  ASSERT_FALSE(log.empty());
  fs::copy_file(log, path_ + ".log.1000");
  {
    std::ofstream torn(path_ + ".log.1000", std::ios::app);
    torn << "x4\tf\tpython3.11\twarm";  // the process died in the middle of this write
  }
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  auto rows = (*l)->Records(0, 1'000'000);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*l)->counters().duplicates, 3u);
  EXPECT_FALSE(fs::exists(log));
  EXPECT_FALSE(fs::exists(path_ + ".log.1000"));
}

TEST_F(LedgerTest, ConcurrentRecordsAllLandOnce) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  constexpr int kThreads = 16, kEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        if (!(*l)->Record(Row("t" + std::to_string(t) + "-" + std::to_string(i))).ok()) failures++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE((*l)->Flush().ok());
  EXPECT_EQ(Count(path_, "SELECT COUNT(DISTINCT request_id) FROM invocations"), kThreads * kEach);
  auto c = (*l)->counters();
  EXPECT_EQ(c.records, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(c.rows, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LT(c.commits, c.records);  // batches
}

TEST_F(LedgerTest, SurvivesReopen) {
  {
    auto l = Ledger::Open(path_);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE((*l)->Record(Row("a")).ok());
  }
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->Record(Row("b")).ok());
  EXPECT_EQ((*l)->Records(0, 1'000'000)->size(), 2u);
  ASSERT_TRUE((*l)->Record(Row("a")).ok());  // a repeat after the restart is not a second row
  EXPECT_EQ((*l)->Records(0, 1'000'000)->size(), 2u);
}

// A process that reports every committed request id on a pipe is killed with SIGKILL while it
// writes: every reported id must be in the ledger afterwards, once.
TEST_F(LedgerTest, CommittedRecordsSurviveKill9) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    auto l = Ledger::Open(path_);
    if (!l) _exit(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          std::string id = "k" + std::to_string(t) + "-" + std::to_string(i);
          if (!(*l)->Record(Row(id)).ok()) _exit(3);
          std::string line = id + "\n";
          if (write(pipefd[1], line.data(), line.size()) < 0) _exit(4);
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  close(pipefd[1]);
  std::string got;
  char buf[4096];
  while (std::count(got.begin(), got.end(), '\n') < 2000) {
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    ASSERT_GT(n, 0) << "the writer died early";
    got.append(buf, static_cast<size_t>(n));
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  ASSERT_TRUE(WIFSIGNALED(status));

  std::set<std::string> acknowledged;
  size_t start = 0;
  for (size_t nl; (nl = got.find('\n', start)) != std::string::npos; start = nl + 1)
    acknowledged.insert(got.substr(start, nl - start));
  auto l = Ledger::Open(path_);  // recovers the WAL of the killed process
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  auto rows = (*l)->Records(0, 1'000'000);
  ASSERT_TRUE(rows.ok());
  std::set<std::string> stored;
  for (const auto& r : *rows) EXPECT_TRUE(stored.insert(r.request_id).second) << r.request_id;
  for (const auto& id : acknowledged) EXPECT_TRUE(stored.count(id)) << "lost " << id;
  EXPECT_GE(stored.size(), acknowledged.size());
}

// A log that cannot grow (here: RLIMIT_FSIZE, as a full disk would) holds records in memory, in
// order, and appends them once it can.
TEST_F(LedgerTest, AFullLogHoldsRecordsUntilThereIsRoom) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead
    auto l = Ledger::Open(path_, LedgerOptions{std::chrono::hours(1)});
    if (!l || !(*l)->Record(Row("h1")).ok()) _exit(2);
    struct rlimit old {};
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit tight = old;
    tight.rlim_cur = 1;  // every log already holds more than a byte
    setrlimit(RLIMIT_FSIZE, &tight);
    if ((*l)->Record(Row("h2")).ok() || (*l)->Record(Row("h3")).ok()) _exit(3);
    if ((*l)->counters().held != 2) _exit(4);
    setrlimit(RLIMIT_FSIZE, &old);
    if (!(*l)->Record(Row("h4")).ok() || (*l)->counters().held != 0) _exit(5);
    auto rows = (*l)->Records(0, 1'000'000);
    if (!rows || rows->size() != 4) _exit(6);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(LedgerTest, UsageSumsPerFunctionInTheWindow) {
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->Record(Row("1", "a", 1000)).ok());
  ASSERT_TRUE((*l)->Record(Row("2", "a", 2000)).ok());
  ASSERT_TRUE((*l)->Record(Row("3", "b", 2000)).ok());
  LedgerRecord throttled = Row("4", "b", 2500);
  throttled.outcome = "throttled";
  throttled.start_kind = "none";
  throttled.billed_ms = 0;
  throttled.mb_ms = throttled.request_cost_pd = throttled.compute_cost_pd = 0;
  ASSERT_TRUE((*l)->Record(throttled).ok());
  LedgerRecord failed = Row("5", "b", 2600);
  failed.outcome = "unhandled";
  ASSERT_TRUE((*l)->Record(failed).ok());
  ASSERT_TRUE((*l)->Record(Row("6", "a", 3000)).ok());  // outside [1500, 3000)

  auto u = (*l)->Usage(1500, 3000);
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 2u);
  EXPECT_EQ((*u)[0].function, "a");
  EXPECT_EQ((*u)[0].invocations, 1);
  EXPECT_EQ((*u)[0].cost_pd(), 408334);
  EXPECT_EQ((*u)[1].function, "b");
  EXPECT_EQ((*u)[1].invocations, 3);
  EXPECT_EQ((*u)[1].requests, 2);
  EXPECT_EQ((*u)[1].throttled, 1);
  EXPECT_EQ((*u)[1].errors, 1);
  EXPECT_EQ((*u)[1].billed_ms, 200);
  EXPECT_EQ((*u)[1].mb_ms, 25600);
  EXPECT_EQ((*u)[1].cost_pd(), 2 * 408334);
  auto only_a = (*l)->Usage(0, 10'000, "a");
  ASSERT_EQ(only_a->size(), 1u);
  EXPECT_EQ((*only_a)[0].invocations, 3);
}

// A ledger written by an older forkletd (schema version 1: the request id as the primary key) is
// moved to version 2 on open: every row kept, bills unchanged, replays still add nothing, and
// new rows no longer go into a b-tree keyed by a random id.
TEST_F(LedgerTest, AVersion1LedgerKeepsEveryRowOnOpen) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* v1 = R"(
      PRAGMA journal_mode=WAL;
      CREATE TABLE invocations (
        request_id TEXT PRIMARY KEY NOT NULL, function TEXT NOT NULL, runtime TEXT NOT NULL,
        start_kind TEXT NOT NULL, outcome TEXT NOT NULL, start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL, init_ms REAL NOT NULL, duration_ms REAL NOT NULL,
        latency_ms REAL NOT NULL, billed_ms INTEGER NOT NULL, memory_mb INTEGER NOT NULL,
        max_memory_mb INTEGER NOT NULL, cpu_ms REAL NOT NULL, mb_ms INTEGER NOT NULL,
        request_cost_pd INTEGER NOT NULL, compute_cost_pd INTEGER NOT NULL,
        cost_pd INTEGER NOT NULL GENERATED ALWAYS AS (request_cost_pd + compute_cost_pd) VIRTUAL,
        gb_seconds REAL NOT NULL GENERATED ALWAYS AS (mb_ms / 1024000.0) VIRTUAL);
      CREATE INDEX invocations_by_start ON invocations (start_ms);
      INSERT INTO invocations (request_id, function, runtime, start_kind, outcome, start_ms, end_ms,
        init_ms, duration_ms, latency_ms, billed_ms, memory_mb, max_memory_mb, cpu_ms, mb_ms,
        request_cost_pd, compute_cost_pd) VALUES
        ('old-1', 'a', 'python3.11', 'cold', 'success', 1000, 1100, 90.5, 7.5, 99.0, 100, 128, 40,
         5.0, 12800, 200000, 208334),
        ('old-2', 'b', 'python3.11', 'warm', 'timeout', 2000, 5000, 0, 3000, 3001, 3000, 256, 50,
         2999.0, 768000, 200000, 12500040);
      PRAGMA user_version = 1;)";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  EXPECT_EQ(Count(path_, "PRAGMA user_version"), 2);
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 2);
  EXPECT_EQ(Count(path_, "SELECT cost_pd FROM invocations WHERE request_id = 'old-2'"), 12700040);
  EXPECT_EQ(Count(path_, "SELECT billed_ms FROM invocations WHERE request_id = 'old-2'"), 3000);
  // The request id is no longer the table's key (no index of its own), and the rows stay unique.
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'invocations' AND "
                         "type = 'index' AND sql IS NULL"), 0);
  LedgerRecord again = Row("old-1", "a", 1000);  // a replay of a record already in
  ASSERT_TRUE((*l)->Record(again).ok());
  ASSERT_TRUE((*l)->Record(Row("new-1", "a", 3000)).ok());
  ASSERT_TRUE((*l)->Flush().ok());
  EXPECT_EQ(Count(path_, "SELECT COUNT(*) FROM invocations"), 3);
  EXPECT_EQ((*l)->counters().duplicates, 1u);
  auto usage = (*l)->Usage(0, 10'000, "");
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 2u);
}

TEST_F(LedgerTest, ALedgerOfANewerSchemaIsRefusedNotRewritten) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x); PRAGMA user_version = 3;", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto l = Ledger::Open(path_);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().ToString().find("newer"), std::string::npos) << l.error().ToString();
  EXPECT_EQ(Count(path_, "PRAGMA user_version"), 3);
}

}  // namespace
}  // namespace forklet::billing
