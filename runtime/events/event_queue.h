// Event (asynchronous) invocations: accepted into the event log, queued per function and run by a
// small pool of workers that wait for capacity instead of dropping. Oldest first within a
// function, round-robin across functions (a function with events waiting gets at most its share
// of the workers); throttles (reserved concurrency, memory budget) delay an event, function
// errors are retried with Lambda's backoff, events past MaximumEventAgeInSeconds or out of retries
// go to the OnFailure destination or the dead-letter store. A drain stops dispatching: what runs
// finishes, what waits stays in the log and runs after the restart.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/invocation.h"
#include "runtime/core/scheduler.h"
#include "runtime/events/event_log.h"
#include "runtime/events/invoke_config.h"
#include "runtime/registry/registry.h"

namespace forklet::events {

struct EventQueueOptions {
  uint32_t workers = 16;                       // invocations of queued events at once (all functions)
  std::chrono::milliseconds retry_base{60000};  // Lambda: 1 min before the first retry, then 2 min
  std::chrono::milliseconds throttle_wait_max{250};  // re-check of a throttled function, at most
  // Bounds on what is accepted and not finished (waiting, waiting for a retry or running); their
  // payloads are held in memory. Past one, Accept refuses with TooManyRequestsException before
  // anything is written: nothing acknowledged is ever dropped for room. 0: no bound.
  uint64_t max_events = 1000000;               // all functions
  uint64_t max_events_per_function = 100000;
  uint64_t max_bytes = 512ull << 20;           // payload bytes, all functions
  uint64_t max_bytes_per_function = 128ull << 20;
  // Refuse new events (TooManyRequestsException) while the event log's file system has less
  // free than this, before it is full and fails mid-write. 0: only a failed write refuses.
  uint64_t min_free_disk_bytes = 64ull << 20;
};

// Per function, since the daemon started (depth and age: now).
struct FunctionEventStats {
  uint64_t received = 0;         // AsyncEventsReceived
  uint64_t succeeded = 0;
  uint64_t failed_attempts = 0;  // attempts that ended in a function error
  uint64_t retried = 0;          // retries scheduled after a function error
  uint64_t throttled = 0;        // times an event waited for capacity
  uint64_t recovered = 0;        // taken over from the log at start
  std::map<std::string, uint64_t> dropped;  // AsyncEventsDropped by reason
  std::map<std::string, uint64_t> refused;  // not accepted (429) by bound: queue, bytes, disk
  uint64_t depth = 0;            // waiting (ready or waiting for a retry)
  uint64_t in_flight = 0;
  int64_t oldest_age_ms = 0;     // of those waiting (AsyncEventAge)
};

class EventQueue {
 public:
  // log may be null (it could not be opened): every Accept is then refused with log_error.
  EventQueue(EventQueueOptions options, registry::Registry* registry, core::Scheduler* scheduler,
             core::InvocationObserver* observer, EventLog* log, InvokeConfigStore* configs,
             Error log_error = {});
  ~EventQueue();  // stops dispatching and waits for the events running

  // Where each event's steps are counted for the bill (the ledger): accepted, run (attempt N),
  // retried (retry N), expired, dead_lettered. Set before Start; called outside the queue's lock.
  using StepRecorder = std::function<void(const std::string& request_id, const std::string& function,
                                          const char* kind, uint32_t attempt)>;
  void SetStepRecorder(StepRecorder recorder) { step_recorder_ = std::move(recorder); }

  // Queues what the log recovered and starts the workers.
  void Start();
  // Durable before it returns; an error means: not accepted. Its op is
  // "TooManyRequestsException" when a bound (count, bytes, free disk) refused it before anything
  // was written, else the log's error (state dir full or read-only).
  // qualifier: the version or alias the client invoked (empty: $LATEST); each attempt runs what
  // it names then (an alias moved meanwhile runs its new version, as on Lambda).
  Status Accept(const std::string& function, const std::string& request_id, const std::string& payload,
                const std::string& qualifier = {});
  // Drain: no event starts from now on; those running finish. Returns at once.
  void StopDispatch();
  // Waits until no event runs (after StopDispatch).
  void WaitIdle();

  // Re-queues a dead-letter event as a new acceptance (its id is kept); false when unknown.
  Result<std::string> Redrive(const std::string& id);
  std::vector<DeadEvent> DeadLetters(const std::string& function = {});

  std::map<std::string, FunctionEventStats> Stats();
  uint64_t Depth();  // all functions

 private:
  struct Item {
    PendingEvent event;
    int64_t not_before_ms = 0;  // a retry waits for its backoff
  };
  struct Queue {
    std::map<std::pair<int64_t, uint64_t>, Item> ready;  // by (accepted_ms, seq): oldest first
    std::multimap<int64_t, Item> delayed;                 // retries by due time
    uint32_t in_flight = 0;
    uint64_t live = 0, live_bytes = 0;                     // accepted, not finished (the bounds)
    int64_t blocked_until_ms = 0;                          // throttled: try again then
    std::chrono::milliseconds throttle_wait{0};
    FunctionEventStats stats;
  };

  void EnqueueLocked(Item item);
  // Checks the bounds and counts the event in (under mu_); the error says which bound refused.
  Status ReserveLocked(const std::string& function, uint64_t bytes);
  void ReleaseLocked(const std::string& function, uint64_t bytes);
  Status CheckFreeDisk();
  bool PickLocked(int64_t now_ms, Item* out, int64_t* wake_ms);
  void WorkerLoop();
  bool Run(Item item);  // true when an invocation ran (its capacity is free again)
  // The event's end: a destination record or the dead-letter store, then the log forgets it.
  void Finish(const PendingEvent& e, const std::string& condition, const core::InvokeResult* result,
              const std::string& detail, const std::string& executed_version = registry::kLatest);
  void Requeue(Item item, bool throttled);

  EventQueueOptions options_;
  registry::Registry* registry_;
  core::Scheduler* scheduler_;
  core::InvocationObserver* observer_;
  EventLog* log_;
  InvokeConfigStore* configs_;
  Error log_error_;
  StepRecorder step_recorder_;
  void Step(const EventData& e, const char* kind, uint32_t attempt = 0) {
    if (step_recorder_) step_recorder_(e.id, e.function, kind, attempt);
  }

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::map<std::string, Queue> queues_;
  std::string cursor_;  // round-robin: the function served last
  uint64_t seq_ = 0;
  uint64_t live_ = 0, live_bytes_ = 0;  // all functions
  uint32_t running_ = 0;
  bool dispatching_ = true;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace forklet::events
