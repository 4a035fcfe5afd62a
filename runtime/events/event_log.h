// The durable record of accepted Event invocations and of the dead-letter store, in
// STATE_DIR/events/log: an append-only file of one JSON line per change, with the billing
// ledger's discipline (one write() per record under a lock; a failed write is cut back so no half
// line stays; the page cache survives kill -9 of the daemon). With sync on, an acceptance (and a
// move to the dead-letter store) also waits for fdatasync, shared by every append that came in
// meanwhile (group commit), so that a power cut loses no accepted event either.
//
// Lines: A (accepted: id, function, its qualifier if any, payload, time), S (an attempt is about to start: its number
// and the function errors so far), D (finished: its outcome is recorded elsewhere), X (moved to
// the dead-letter store, with why), Y (removed from the dead-letter store). Open() replays the
// file, keeps what is still pending and dead, and rewrites it without the rest (temp file, fsync,
// rename); the same compaction runs when finished lines outweigh live ones.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"

namespace forklet::events {

// What the client handed in; never changes after acceptance.
struct EventData {
  std::string id;        // the request id of the 202
  std::string function;
  std::string qualifier;  // as the client named it: a version or an alias; empty: $LATEST
  std::string payload;   // JSON text
  int64_t accepted_ms = 0;  // epoch ms
};

// An accepted event and how far it got.
struct PendingEvent {
  std::shared_ptr<const EventData> data;
  uint32_t invocations = 0;  // attempts started (Lambda's approximateInvokeCount)
  uint32_t failures = 0;     // attempts that ended in a function error
};

// An event that will not run again unless redriven.
struct DeadEvent {
  std::shared_ptr<const EventData> data;
  std::string reason;    // RetriesExhausted, EventAgeExceeded, FunctionNotFound, ...
  std::string detail;    // the last error, for an operator
  int64_t dead_ms = 0;
  uint32_t invocations = 0;
};

struct EventLogOptions {
  bool sync = false;              // fdatasync every append (group commit)
  size_t max_dead = 10000;        // the dead-letter store keeps the newest this many
};

struct EventLogCounters {
  uint64_t appends = 0;
  uint64_t syncs = 0;        // fdatasync calls (fewer than appends under load: group commit)
  uint64_t compactions = 0;
  uint64_t errors = 0;
  uint64_t bytes = 0;        // size of the log now
};

class EventLog {
 public:
  // Creates dir if needed, replays and compacts its log. Fails when the directory cannot be
  // written (a read-only or full state dir).
  static Result<std::unique_ptr<EventLog>> Open(const std::string& dir, EventLogOptions options = {});
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // What a previous process accepted and did not finish, oldest first (once, after Open).
  std::vector<PendingEvent> TakeRecovered();

  // Returns once the event is in the log (and on disk when sync is on). On error nothing of it
  // stays, and the error says why ("No space left on device", "Read-only file system").
  Status Accept(const std::shared_ptr<const EventData>& event);
  // Before each attempt: the attempt's number and the failures so far.
  Status Started(const std::string& id, uint32_t invocations, uint32_t failures);
  Status Finished(const std::string& id);
  Status Dead(DeadEvent dead);
  // Takes an event out of the dead-letter store; nullopt-like empty data when unknown.
  Result<DeadEvent> RemoveDead(const std::string& id);
  std::vector<DeadEvent> ListDead(const std::string& function = {});

  EventLogCounters counters();
  const std::string& path() const { return path_; }

 private:
  EventLog(std::string dir, EventLogOptions options);
  Status Init();
  // Locks mu_; with options_.sync and sync, waits for fdatasync (group commit). Only what would
  // lose an event is synced (A, X); a lost S, D or Y line means at most a duplicate run.
  Status AppendLine(std::string line, bool sync);
  int WriteLocked(std::string_view line);
  Status CompactLocked(std::unique_lock<std::mutex>& lock);
  void MaybeCompactLocked(std::unique_lock<std::mutex>& lock);
  std::string LiveText() const;  // under mu_

  std::string dir_, path_;
  EventLogOptions options_;
  std::mutex mu_;
  std::condition_variable sync_cv_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t live_bytes_ = 0;        // approximate size of what compaction would keep
  uint64_t written_seq_ = 0, synced_seq_ = 0;
  bool syncing_ = false;
  std::map<std::string, PendingEvent> pending_;
  std::map<std::string, DeadEvent> dead_;
  std::vector<PendingEvent> recovered_;
  EventLogCounters counters_;
};

}  // namespace forklet::events
