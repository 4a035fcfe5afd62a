// The event queue: acceptance, dispatch, retries and each event's end.
#include "runtime/events/event_queue.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <random>

#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include "runtime/log/log.h"
#include "runtime/registry/function.h"

namespace forklet::events {
namespace {

using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Iso8601Ms(int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// A payload as JSON where it is JSON (always, for what the API accepted), else as a string.
json AsJson(const std::string& text) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

// Lambda's destination record.
std::string DestinationRecord(const PendingEvent& e, const std::string& condition,
                              const core::InvokeResult* result, const std::string& executed_version) {
  const std::string& q = e.data->qualifier;
  json record{{"version", "1.0"},
              {"timestamp", Iso8601Ms(NowMs())},
              {"requestContext",
               {{"requestId", e.data->id},
                {"functionArn", registry::QualifiedArn(e.data->function, q.empty() ? registry::kLatest : q)},
                {"condition", condition},
                {"approximateInvokeCount", e.invocations}}},
              {"requestPayload", AsJson(e.data->payload)}};
  if (result) {
    json rc{{"statusCode", 200}, {"executedVersion", executed_version}};
    if (result->outcome != core::Outcome::kSuccess) rc["functionError"] = "Unhandled";
    record["responseContext"] = rc;
    record["responsePayload"] = result->body.empty() ? json() : AsJson(result->body);
  }
  return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

EventQueue::EventQueue(EventQueueOptions options, registry::Registry* registry,
                       core::Scheduler* scheduler, core::InvocationObserver* observer, EventLog* log,
                       InvokeConfigStore* configs, Error log_error)
    : options_(options), registry_(registry), scheduler_(scheduler), observer_(observer), log_(log),
      configs_(configs), log_error_(std::move(log_error)) {}

EventQueue::~EventQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dispatching_ = false;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void EventQueue::Start() {
  if (log_) {
    auto recovered = log_->TakeRecovered();
    std::lock_guard lock(mu_);
    for (auto& e : recovered) {
      Queue& q = queues_[e.data->function];
      q.stats.recovered++;
      // Acknowledged before: counted against the bounds, never refused.
      q.live++;
      q.live_bytes += e.data->payload.size();
      live_++;
      live_bytes_ += e.data->payload.size();
      EnqueueLocked(Item{std::move(e), 0});
    }
    if (!recovered.empty())
      log::Notice("events: " + std::to_string(recovered.size()) +
                  " accepted events not finished before the last stop are queued again");
  }
  for (uint32_t i = 0; i < std::max<uint32_t>(1, options_.workers); ++i)
    workers_.emplace_back([this] { WorkerLoop(); });
}

Status EventQueue::Accept(const std::string& function, const std::string& request_id,
                          const std::string& payload, const std::string& qualifier) {
  if (!log_) return log_error_;
  if (auto s = CheckFreeDisk(); !s) {
    std::lock_guard lock(mu_);
    queues_[function].stats.refused["disk"]++;
    return s;
  }
  {
    std::lock_guard lock(mu_);
    if (auto s = ReserveLocked(function, payload.size()); !s) return s;
  }
  auto d = std::make_shared<EventData>();
  d->id = request_id;
  d->function = function;
  d->qualifier = qualifier == registry::kLatest ? "" : qualifier;
  d->payload = payload;
  d->accepted_ms = NowMs();
  if (auto s = log_->Accept(d); !s) {
    std::lock_guard lock(mu_);
    ReleaseLocked(function, payload.size());
    return s;
  }
  Step(*d, "accepted");
  {
    std::lock_guard lock(mu_);
    queues_[function].stats.received++;
    EnqueueLocked(Item{PendingEvent{d, 0, 0}, 0});
  }
  cv_.notify_one();
  return {};
}

namespace {

Error Refused(const std::string& what, int err = 0) {
  return Error{"TooManyRequestsException", err,
               what + ": the event was not accepted (nothing was stored); retry later"};
}

std::string Mb(uint64_t bytes) { return std::to_string(bytes >> 20) + " MB"; }

}  // namespace

Status EventQueue::ReserveLocked(const std::string& function, uint64_t bytes) {
  Queue& q = queues_[function];
  const EventQueueOptions& o = options_;
  auto refuse = [&](const std::string& bound, const std::string& what) {
    q.stats.refused[bound]++;
    return Refused(what);
  };
  if (o.max_events_per_function && q.live + 1 > o.max_events_per_function)
    return refuse("events", "the event queue of function " + function + " is full: " +
                                std::to_string(q.live) + " events accepted and not finished "
                                "(--event-queue-max-per-function " +
                                std::to_string(o.max_events_per_function) + ")");
  if (o.max_events && live_ + 1 > o.max_events)
    return refuse("events", "forkletd's event queue is full: " + std::to_string(live_) +
                                " events of all functions accepted and not finished "
                                "(--event-queue-max " + std::to_string(o.max_events) + ")");
  if (o.max_bytes_per_function && q.live_bytes + bytes > o.max_bytes_per_function)
    return refuse("bytes", "the event queue of function " + function + " holds " +
                               std::to_string(q.live_bytes) + " bytes of payloads, this one would "
                               "pass --event-queue-max-mb-per-function " +
                               Mb(o.max_bytes_per_function));
  if (o.max_bytes && live_bytes_ + bytes > o.max_bytes)
    return refuse("bytes", "forkletd's event queue holds " + std::to_string(live_bytes_) +
                               " bytes of payloads, this one would pass --event-queue-max-mb " +
                               Mb(o.max_bytes));
  q.live++;
  q.live_bytes += bytes;
  live_++;
  live_bytes_ += bytes;
  return {};
}

void EventQueue::ReleaseLocked(const std::string& function, uint64_t bytes) {
  Queue& q = queues_[function];
  q.live -= std::min<uint64_t>(q.live, 1);
  q.live_bytes -= std::min(q.live_bytes, bytes);
  live_ -= std::min<uint64_t>(live_, 1);
  live_bytes_ -= std::min(live_bytes_, bytes);
}

Status EventQueue::CheckFreeDisk() {
  if (options_.min_free_disk_bytes == 0) return {};
  struct statvfs st {};
  if (statvfs(log_->path().c_str(), &st) != 0) return {};  // the write itself will tell
  uint64_t free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (free >= options_.min_free_disk_bytes) return {};
  return Refused("the state dir's file system has " + std::to_string(free >> 20) +
                 " MB free, less than --event-min-free-disk-mb " + Mb(options_.min_free_disk_bytes),
                 ENOSPC);
}

void EventQueue::StopDispatch() {
  std::lock_guard lock(mu_);
  dispatching_ = false;
}

void EventQueue::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return running_ == 0; });
}

void EventQueue::EnqueueLocked(Item item) {
  Queue& q = queues_[item.event.data->function];
  if (item.not_before_ms > NowMs()) {
    q.delayed.emplace(item.not_before_ms, std::move(item));
  } else {
    auto key = std::make_pair(item.event.data->accepted_ms, ++seq_);
    q.ready.emplace(key, std::move(item));
  }
}

bool EventQueue::PickLocked(int64_t now, Item* out, int64_t* wake) {
  uint32_t waiting = 0;
  for (auto& [name, q] : queues_) {
    while (!q.delayed.empty() && q.delayed.begin()->first <= now) {
      Item item = std::move(q.delayed.begin()->second);
      q.delayed.erase(q.delayed.begin());
      item.not_before_ms = 0;
      q.ready.emplace(std::make_pair(item.event.data->accepted_ms, ++seq_), std::move(item));
    }
    if (!q.delayed.empty()) *wake = std::min(*wake, q.delayed.begin()->first);
    if (!q.ready.empty()) waiting++;
  }
  if (waiting == 0) return false;
  // A function's share of the workers while others wait too: none can take them all.
  uint32_t cap = std::max<uint32_t>(1, options_.workers / waiting);
  // Round-robin: start with the function after the one served last.
  auto start = queues_.upper_bound(cursor_);
  for (size_t i = 0; i < queues_.size(); ++i, ++start) {
    if (start == queues_.end()) start = queues_.begin();
    auto& [name, q] = *start;
    if (q.ready.empty()) continue;
    if (q.blocked_until_ms > now) {
      *wake = std::min(*wake, q.blocked_until_ms);
      continue;
    }
    if (q.in_flight >= cap) continue;
    *out = std::move(q.ready.begin()->second);
    q.ready.erase(q.ready.begin());
    q.in_flight++;
    cursor_ = name;
    return true;
  }
  return false;
}

void EventQueue::WorkerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!dispatching_) {
      cv_.wait(lock);
      continue;
    }
    Item item;
    int64_t now = NowMs(), wake = INT64_MAX;
    if (PickLocked(now, &item, &wake)) {
      std::string function = item.event.data->function;
      running_++;
      lock.unlock();
      bool ran = Run(std::move(item));
      lock.lock();
      running_--;
      Queue& q = queues_[function];
      q.in_flight--;
      if (ran) q.blocked_until_ms = 0;  // its instance is free again: no need to wait out a throttle
      idle_cv_.notify_all();
      cv_.notify_all();  // a share or capacity came free
      continue;
    }
    if (wake == INT64_MAX)
      cv_.wait(lock);
    else
      cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, wake - now)));
  }
}

void EventQueue::Requeue(Item item, bool throttled) {
  {
    std::lock_guard lock(mu_);
    Queue& q = queues_[item.event.data->function];
    if (throttled) {
      q.stats.throttled++;
      q.throttle_wait = std::min(options_.throttle_wait_max,
                                 std::max(std::chrono::milliseconds(10), q.throttle_wait * 2));
      q.blocked_until_ms = NowMs() + q.throttle_wait.count();
    }
    EnqueueLocked(std::move(item));
  }
  cv_.notify_one();
}

bool EventQueue::Run(Item item) {
  PendingEvent& e = item.event;
  const std::string& name = e.data->function;
  InvokeConfig cfg = configs_->Effective(name);
  int64_t age_ms = NowMs() - e.data->accepted_ms;
  if (age_ms > static_cast<int64_t>(cfg.max_event_age_s) * 1000) {
    Step(*e.data, "expired");
    Finish(e, "EventAgeExceeded", nullptr,
           "not run within MaximumEventAgeInSeconds (" + std::to_string(cfg.max_event_age_s) + ")");
    return false;
  }
  const std::string& qualifier = e.data->qualifier;
  auto fn = registry_->Resolve(name, qualifier);
  if (!fn) {
    Finish(e, "FunctionNotFound", nullptr,
           registry_->Get(name) ? "version or alias " + qualifier + " was deleted before the event ran"
                                : "the function was deleted before the event ran");
    return false;
  }
  // Through an alias the context's invoked ARN is the alias's, as for RequestResponse.
  const bool via_alias = !qualifier.empty() && qualifier != fn->config.version;
  // Capacity first: a function at its concurrency waits here without an attempt being logged.
  uint32_t limit = fn->config.reserved_concurrency.value_or(  // in the function's record
      scheduler_->options().max_instances_per_function);
  auto counts = scheduler_->Counts(name);
  if (counts.idle == 0 && counts.busy >= limit) {
    Requeue(std::move(item), true);
    return false;
  }
  auto admission = scheduler_->Admit();
  if (!admission) {  // draining (one-way): kept in the log for the next start
    StopDispatch();
    Requeue(std::move(item), false);
    return false;
  }
  e.invocations++;
  if (auto s = log_->Started(e.data->id, e.invocations, e.failures); !s)
    log::Warning("events: " + s.error().ToString() + " (attempt of " + e.data->id + " not logged)");
  core::InvokeResult result = scheduler_->Invoke(*fn, e.data->id, e.data->payload, false,
                                                 via_alias ? registry::QualifiedArn(name, qualifier) : "");
  if (result.outcome == core::Outcome::kThrottled) {
    e.invocations--;  // it did not run
    Requeue(std::move(item), true);
    return false;
  }
  Step(*e.data, "run", e.invocations);
  {
    std::lock_guard lock(mu_);
    queues_[name].throttle_wait = std::chrono::milliseconds(0);
  }
  if (result.end_epoch_ms == 0) result.end_epoch_ms = NowMs();
  // Each attempt has its own ledger row: the first under the request id, retries with #N.
  std::string ledger_id = e.invocations == 1 ? e.data->id : e.data->id + "#" + std::to_string(e.invocations);
  if (observer_) observer_->OnInvocation(name, fn->config.runtime, fn->config.memory_mb, ledger_id, result);
  if (result.outcome == core::Outcome::kSuccess) {
    Finish(e, "Success", &result, "", fn->config.version);
    return true;
  }
  if (result.outcome == core::Outcome::kSetupFailed) {  // the node's fault, not the function's
    log::Warning("events: " + e.data->id + " of " + name + ": " + result.error_message + "; trying again in 1 s");
    item.not_before_ms = NowMs() + 1000;
    Requeue(std::move(item), false);
    return true;
  }
  bool draining;
  {
    std::lock_guard lock(mu_);
    draining = !dispatching_;
  }
  if (draining && result.outcome == core::Outcome::kCrashed) {
    // Stopped by the drain's kill, not by its own fault: kept for the next start.
    Requeue(std::move(item), false);
    return true;
  }
  e.failures++;
  {
    std::lock_guard lock(mu_);
    queues_[name].stats.failed_attempts++;
  }
  if (e.failures <= cfg.max_retry_attempts) {
    auto delay = options_.retry_base * (1LL << (e.failures - 1));  // Lambda: 1 min, then 2 min
    item.not_before_ms = NowMs() + delay.count();
    {
      std::lock_guard lock(mu_);
      queues_[name].stats.retried++;
    }
    Step(*e.data, "retried", e.failures);
    if (auto s = log_->Started(e.data->id, e.invocations, e.failures); !s)
      log::Warning("events: " + s.error().ToString());
    Requeue(std::move(item), false);
    return true;
  }
  Finish(e, "RetriesExhausted", &result,
         core::OutcomeName(result.outcome) + std::string(": ") + result.body.substr(0, 1024),
         fn->config.version);
  return true;
}

void EventQueue::Finish(const PendingEvent& e, const std::string& condition,
                        const core::InvokeResult* result, const std::string& detail,
                        const std::string& executed_version) {
  const std::string& name = e.data->function;
  InvokeConfig cfg = configs_->Effective(name);
  bool success = condition == "Success";
  {
    std::lock_guard lock(mu_);
    ReleaseLocked(name, e.data->payload.size());  // its room in the queue is free again
    auto& stats = queues_[name].stats;
    if (success)
      stats.succeeded++;
    else
      stats.dropped[condition]++;
  }
  const std::string& destination = success ? cfg.on_success : cfg.on_failure;
  std::string target = DestinationFunction(destination, name);
  if (!target.empty()) {
    std::string id = core::NewRequestId();
    if (auto s = Accept(target, id, DestinationRecord(e, condition, result, executed_version)); s) {
      if (auto f = log_->Finished(e.data->id); !f)
        log::Warning("events: " + f.error().ToString() + " (" + e.data->id + " may run again after a restart)");
      return;
    } else {
      log::Warning("events: destination " + destination + " for " + e.data->id + ": " + s.error().ToString());
    }
  }
  if (success) {
    if (auto f = log_->Finished(e.data->id); !f)
      log::Warning("events: " + f.error().ToString() + " (" + e.data->id + " may run again after a restart)");
    return;
  }
  log::Warning("events: " + e.data->id + " of " + name + " to the dead-letter store: " + condition +
               (detail.empty() ? "" : " (" + detail + ")"));
  if (auto s = log_->Dead(DeadEvent{e.data, condition, detail, NowMs(), e.invocations}); !s)
    log::Warning("events: " + s.error().ToString());
  else
    Step(*e.data, "dead_lettered");
}

Result<std::string> EventQueue::Redrive(const std::string& id) {
  if (!log_) return log_error_;
  auto dead = log_->RemoveDead(id);
  if (!dead) return dead.error();
  // A new acceptance under a new request id (the ledger keeps one row per request id).
  std::string fresh = core::NewRequestId();
  if (auto s = Accept(dead->data->function, fresh, dead->data->payload, dead->data->qualifier); !s) {
    (void)log_->Dead(std::move(dead.value()));  // back where it was
    return s.error();
  }
  return fresh;
}

std::vector<DeadEvent> EventQueue::DeadLetters(const std::string& function) {
  return log_ ? log_->ListDead(function) : std::vector<DeadEvent>{};
}

std::map<std::string, FunctionEventStats> EventQueue::Stats() {
  std::lock_guard lock(mu_);
  int64_t now = NowMs();
  std::map<std::string, FunctionEventStats> out;
  for (const auto& [name, q] : queues_) {
    FunctionEventStats s = q.stats;
    s.depth = q.ready.size() + q.delayed.size();
    s.in_flight = q.in_flight;
    int64_t oldest = INT64_MAX;
    if (!q.ready.empty()) oldest = q.ready.begin()->first.first;
    for (const auto& [due, item] : q.delayed) oldest = std::min(oldest, item.event.data->accepted_ms);
    s.oldest_age_ms = oldest == INT64_MAX ? 0 : now - oldest;
    out[name] = s;
  }
  return out;
}

uint64_t EventQueue::Depth() {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& [name, q] : queues_) n += q.ready.size() + q.delayed.size();
  return n;
}

}  // namespace forklet::events
