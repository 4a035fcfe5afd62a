// The billing ledger: one SQLite row per finished invocation, in STATE_DIR/ledger.db (WAL).
//
// Record() is on the invocation path and returns once the record is safe from the daemon's
// death: it appends one line to the ledger's log (ledger.db.log.N) with a single write(), which
// puts it in the kernel's page cache, where kill -9 of the daemon cannot reach it (a power cut
// or kernel crash can, as it can a SQLite commit with synchronous=NORMAL; neither fsyncs). That
// costs a few microseconds; a SQLite commit per invocation measured 50-100 us on the warm path.
// A background thread moves the log into SQLite in batches (one transaction per batch) every
// flush interval, and Open() does the same with whatever a killed predecessor left, before
// anything is read. The request id is the table's primary key and rows are inserted with
// ON CONFLICT DO NOTHING, so replaying a log twice (a crash between commit and unlink) can
// never record an invocation twice. Queries flush first: a bill includes every invocation
// whose response has gone out. When the log cannot grow (a full disk), records wait in memory,
// in order, until it can; Record() says so, and forklet_ledger_held_records shows how many.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace forklet::billing {

// One row of the ledger, as stored.
struct LedgerRecord {
  std::string request_id;
  std::string function;
  std::string runtime;
  std::string start_kind;  // cold, zygote, warm, restore; none when throttled
  std::string outcome;     // success, handled, unhandled, timeout, oom, crashed, throttled, setup_failed
  int64_t start_ms = 0;    // epoch milliseconds
  int64_t end_ms = 0;
  double init_ms = 0;      // function init on a new instance (0 when warm)
  double duration_ms = 0;  // Lambda's Duration
  double latency_ms = 0;   // request in to response out inside the daemon
  uint64_t billed_ms = 0;
  uint32_t memory_mb = 0;
  uint64_t max_memory_mb = 0;
  double cpu_ms = 0;
  int64_t mb_ms = 0;             // GB-seconds x 1,024,000
  int64_t request_cost_pd = 0;   // picodollars
  int64_t compute_cost_pd = 0;
  int64_t cost_pd() const { return request_cost_pd + compute_cost_pd; }
};

// A step in the life of an Event invocation, for the bill's event counts (table events, one row
// per (request_id, kind, attempt), so a replayed log never counts one twice).
struct EventRecord {
  std::string request_id;  // the event's (the 202's request id)
  std::string function;
  std::string kind;        // accepted, run, retried, expired, dead_lettered
  uint32_t attempt = 0;    // run and retried: the attempt's number; else 0
  int64_t at_ms = 0;       // epoch ms
};

// Usage and cost of one function over a window: sums of ledger rows.
struct FunctionUsage {
  std::string function;
  int64_t invocations = 0;  // every record
  int64_t requests = 0;     // billed ones (not throttled, not setup failures)
  int64_t throttled = 0;
  int64_t errors = 0;       // billed, but not success
  int64_t billed_ms = 0;
  int64_t mb_ms = 0;
  int64_t request_cost_pd = 0;
  int64_t compute_cost_pd = 0;
  int64_t cost_pd() const { return request_cost_pd + compute_cost_pd; }
  // Event invocations whose step fell in the window (by its time, not the invocation's start).
  int64_t events_accepted = 0;
  int64_t events_run = 0;            // attempts started (each is also an invocation above)
  int64_t events_retried = 0;        // retries scheduled after a function error
  int64_t events_expired = 0;        // past MaximumEventAgeInSeconds before running
  int64_t events_dead_lettered = 0;  // ended in forklet's dead-letter store
};

struct LedgerCounters {
  uint64_t records = 0;          // Record() calls that succeeded (in the log)
  uint64_t rows = 0;             // rows inserted into SQLite (by this process)
  uint64_t duplicates = 0;       // log lines already a row (same request id and start_ms)
  uint64_t errors = 0;           // records refused or lost to an error
  uint64_t held = 0;             // records waiting in memory for room in the log (disk full)
  uint64_t commits = 0;          // SQLite transactions
  double append_seconds = 0;     // time in Record(): the invocation path's cost
  double commit_seconds = 0;     // time moving the log into SQLite (background)
};

struct LedgerOptions {
  std::chrono::milliseconds flush_interval{100};  // how stale ledger.db may be for outside readers
};

class Ledger {
 public:
  // Opens or creates the database, moves any log a previous process left into it, and starts
  // the background flusher.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path, LedgerOptions options = {});
  ~Ledger();  // flushes everything
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Appends the record; returns once it survives the process's death. Thread-safe.
  Status Record(const LedgerRecord& record);
  // The same log and guarantees for an Event invocation's step.
  Status RecordEvent(const EventRecord& record);
  // Moves everything recorded so far into SQLite.
  Status Flush();

  // Per function, for records that started in [from_ms, to_ms); function empty: all.
  Result<std::vector<FunctionUsage>> Usage(int64_t from_ms, int64_t to_ms,
                                           const std::string& function = {});
  // The records themselves, oldest first (exports, tests).
  Result<std::vector<LedgerRecord>> Records(int64_t from_ms, int64_t to_ms,
                                            const std::string& function = {});

  LedgerCounters counters() const;
  const std::string& path() const { return path_; }

 private:
  Ledger(std::string path, LedgerOptions options) : path_(std::move(path)), options_(options) {}
  Status Init();
  std::string LogPath(uint64_t seq) const;
  Result<int> OpenLog(uint64_t seq);
  // Its lines into SQLite, then unlink it; under flush_mu_. paced: the background flusher's
  // replay, which pauses between batches of rows so that it never holds a CPU for long.
  Status ReplayLog(uint64_t seq, bool paced = false);
  Status FlushPaced(bool paced);
  Status AppendLine(std::string_view line, const std::string& what);  // held when the log is full
  int AppendLocked(std::string_view line);  // one write; 0 or errno, never a partial line
  void DrainHeldLocked();                   // held records into the log while it takes them
  void FlushLoop();

  std::string path_;
  LedgerOptions options_;
  sqlite3* writer_ = nullptr;       // the flusher's, under flush_mu_
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* insert_event_ = nullptr;
  sqlite3* reader_ = nullptr;       // queries, under reader_mu_
  std::mutex reader_mu_;

  mutable std::mutex log_mu_;       // the current log: Record() appends under it
  int log_fd_ = -1;
  uint64_t log_seq_ = 0;
  uint64_t log_size_ = 0;
  std::deque<std::string> held_;    // appends the log refused, oldest first

  std::mutex flush_mu_;             // one flush at a time
  std::vector<uint64_t> unflushed_;  // closed logs still to move into SQLite

  std::atomic<uint64_t> records_{0}, rows_{0}, duplicates_{0}, errors_{0}, commits_{0};
  std::atomic<uint64_t> append_ns_{0}, commit_ns_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace forklet::billing
