// The event log: append, group commit, replay and compaction.
#include "runtime/events/event_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/log/log.h"
#include "runtime/registry/durable_fs.h"

namespace forklet::events {
namespace {

using nlohmann::json;

constexpr uint64_t kCompactMinBytes = 1 << 20;  // finished lines worth rewriting the log for

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string AcceptLine(const EventData& e) {
  json j{{"op", "A"}, {"id", e.id}, {"fn", e.function}, {"t", e.accepted_ms}, {"p", e.payload}};
  if (!e.qualifier.empty()) j["q"] = e.qualifier;  // absent: $LATEST (and in older logs)
  return Dump(j);
}

std::string StartedLine(const std::string& id, uint32_t n, uint32_t f) {
  return Dump(json{{"op", "S"}, {"id", id}, {"n", n}, {"f", f}});
}

std::string DeadLine(const DeadEvent& d) {
  json j{{"op", "X"}, {"id", d.data->id}, {"fn", d.data->function},
         {"t", d.data->accepted_ms}, {"p", d.data->payload}, {"reason", d.reason},
         {"detail", d.detail}, {"dt", d.dead_ms}, {"n", d.invocations}};
  if (!d.data->qualifier.empty()) j["q"] = d.data->qualifier;
  return Dump(j);
}

Error LogError(const std::string& op, int e) {
  // The state dir's own words for what a user can fix: full or read-only.
  if (e == ENOSPC || e == EDQUOT) return Error{op, e, "the state dir is full"};
  if (e == EROFS) return Error{op, e, "the state dir is read-only"};
  return Error{op, e, {}};
}

}  // namespace

EventLog::EventLog(std::string dir, EventLogOptions options)
    : dir_(std::move(dir)), path_(dir_ + "/log"), options_(options) {}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& dir, EventLogOptions options) {
  std::unique_ptr<EventLog> l(new EventLog(dir, options));
  if (auto s = l->Init(); !s) return s.error();
  return l;
}

EventLog::~EventLog() {
  if (fd_ >= 0) close(fd_);
}

Status EventLog::Init() {
  struct stat st {};
  if (stat(dir_.c_str(), &st) != 0) {
    if (auto s = registry::MakeDir(dir_, 0700); !s) return LogError("events: mkdir " + dir_, s.error().err);
  }
  // Replay: the last word on each id wins; a line cut short by a killed writer ends the file.
  std::ifstream in(path_, std::ios::binary);
  std::string line;
  uint64_t bad = 0;
  std::vector<std::string> order;  // acceptance order of pending ids
  while (std::getline(in, line)) {
    if (in.eof()) {
      log::Warning("events: " + path_ + " ends in an incomplete line (its client got no 202); ignored");
      break;
    }
    json j = json::parse(line, nullptr, false);
    try {
      if (!j.is_object() || !j.contains("op") || !j.contains("id")) {
        bad++;
        continue;
      }
      std::string op = j["op"].get<std::string>(), id = j["id"].get<std::string>();
      if (op == "A" || op == "X") {
        auto d = std::make_shared<EventData>();
        d->id = id;
        d->function = j.value("fn", "");
        d->qualifier = j.value("q", "");
        d->payload = j.value("p", "");
        d->accepted_ms = j.value("t", int64_t{0});
        if (op == "A") {
          pending_[id] = PendingEvent{d, 0, 0};
          order.push_back(id);
        } else {
          pending_.erase(id);
          dead_[id] = DeadEvent{d, j.value("reason", ""), j.value("detail", ""),
                                j.value("dt", int64_t{0}), j.value("n", 0u)};
        }
      } else if (op == "S") {
        if (auto it = pending_.find(id); it != pending_.end()) {
          it->second.invocations = j.value("n", 0u);
          it->second.failures = j.value("f", 0u);
        }
      } else if (op == "D") {
        pending_.erase(id);
      } else if (op == "Y") {
        dead_.erase(id);
      } else {
        bad++;
      }
    } catch (const json::exception&) {  // a field of the wrong type: someone else's edit
      bad++;
    }
  }
  if (bad) log::Warning("events: " + std::to_string(bad) + " unreadable lines in " + path_ + " skipped");
  for (const auto& id : order)
    if (auto it = pending_.find(id); it != pending_.end() && (recovered_.empty() || recovered_.back().data->id != id))
      recovered_.push_back(it->second);
  std::stable_sort(recovered_.begin(), recovered_.end(), [](const PendingEvent& a, const PendingEvent& b) {
    return a.data->accepted_ms < b.data->accepted_ms;
  });
  // Start from a compact file; this also proves the directory can be written.
  std::unique_lock lock(mu_);
  return CompactLocked(lock);
}

std::vector<PendingEvent> EventLog::TakeRecovered() {
  std::lock_guard lock(mu_);
  return std::exchange(recovered_, {});
}

std::string EventLog::LiveText() const {
  std::string text;
  std::vector<const PendingEvent*> ordered;
  for (const auto& [id, p] : pending_) ordered.push_back(&p);
  std::stable_sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) {
    return a->data->accepted_ms < b->data->accepted_ms;
  });
  for (const auto& [id, d] : dead_) text += DeadLine(d);
  for (const PendingEvent* p : ordered) {
    text += AcceptLine(*p->data);
    if (p->invocations || p->failures) text += StartedLine(p->data->id, p->invocations, p->failures);
  }
  return text;
}

Status EventLog::CompactLocked(std::unique_lock<std::mutex>& lock) {
  sync_cv_.wait(lock, [&] { return !syncing_; });
  std::string text = LiveText();
  // WriteFileAtomic: temp file, fsync, rename over the log, fsync the directory.
  if (auto s = registry::WriteFileAtomic(dir_, "log", text); !s)
    return LogError("events: rewrite " + path_, s.error().err);
  int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return LogError("events: open " + path_, errno);
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  size_ = live_bytes_ = text.size();
  synced_seq_ = written_seq_;
  counters_.compactions++;
  return {};
}

void EventLog::MaybeCompactLocked(std::unique_lock<std::mutex>& lock) {
  if (size_ < kCompactMinBytes || size_ < 2 * live_bytes_) return;
  if (auto s = CompactLocked(lock); !s) {
    counters_.errors++;
    log::Warning(s.error().ToString() + " (the log keeps growing until it can be rewritten)");
  }
}

int EventLog::WriteLocked(std::string_view line) {
  if (fd_ < 0) return EBADF;
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      (void)!ftruncate(fd_, static_cast<off_t>(size_));  // no half line before the next one
      return e;
    }
    done += static_cast<size_t>(n);
  }
  size_ += line.size();
  return 0;
}

Status EventLog::AppendLine(std::string line, bool sync) {
  std::unique_lock lock(mu_);
  if (int e = WriteLocked(line); e != 0) {
    counters_.errors++;
    return LogError("events: append to " + path_, e);
  }
  counters_.appends++;
  uint64_t mine = ++written_seq_;
  if (!options_.sync || !sync) return {};
  // Group commit: one fdatasync covers every line written before it started; whoever finds no
  // sync running starts the next one for all that wait.
  while (synced_seq_ < mine) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    uint64_t target = written_seq_;
    int fd = fd_;
    lock.unlock();
    int rc = fdatasync(fd);
    int e = errno;
    lock.lock();
    syncing_ = false;
    counters_.syncs++;
    sync_cv_.notify_all();
    if (rc != 0) {
      counters_.errors++;
      return LogError("events: fdatasync " + path_, e);
    }
    synced_seq_ = std::max(synced_seq_, target);
  }
  return {};
}

Status EventLog::Accept(const std::shared_ptr<const EventData>& event) {
  std::string line = AcceptLine(*event);
  size_t n = line.size();
  if (auto s = AppendLine(std::move(line), true); !s) return s;
  std::lock_guard lock(mu_);
  pending_[event->id] = PendingEvent{event, 0, 0};
  live_bytes_ += n;
  return {};
}

Status EventLog::Started(const std::string& id, uint32_t invocations, uint32_t failures) {
  {
    std::lock_guard lock(mu_);
    if (auto it = pending_.find(id); it != pending_.end()) {
      it->second.invocations = invocations;
      it->second.failures = failures;
    }
  }
  return AppendLine(StartedLine(id, invocations, failures), false);
}

Status EventLog::Finished(const std::string& id) {
  auto s = AppendLine(Dump(json{{"op", "D"}, {"id", id}}), false);
  std::unique_lock lock(mu_);
  // Forgotten even when the line could not be written: the next compaction drops it for good.
  if (auto it = pending_.find(id); it != pending_.end()) {
    live_bytes_ -= std::min<uint64_t>(live_bytes_, it->second.data->payload.size() + 64);
    pending_.erase(it);
  }
  MaybeCompactLocked(lock);
  return s;
}

Status EventLog::Dead(DeadEvent dead) {
  std::string line = DeadLine(dead);
  size_t n = line.size();
  auto s = AppendLine(std::move(line), true);
  std::unique_lock lock(mu_);
  if (auto it = pending_.find(dead.data->id); it != pending_.end()) {
    live_bytes_ -= std::min<uint64_t>(live_bytes_, it->second.data->payload.size() + 64);
    pending_.erase(it);
  }
  dead_[dead.data->id] = std::move(dead);
  live_bytes_ += n;
  while (dead_.size() > options_.max_dead) {  // the oldest death goes first
    auto oldest = std::min_element(dead_.begin(), dead_.end(), [](const auto& a, const auto& b) {
      return a.second.dead_ms < b.second.dead_ms;
    });
    log::Warning("events: dead-letter store full; forgetting " + oldest->first);
    dead_.erase(oldest);
  }
  MaybeCompactLocked(lock);
  return s;
}

Result<DeadEvent> EventLog::RemoveDead(const std::string& id) {
  DeadEvent d;
  {
    std::lock_guard lock(mu_);
    auto it = dead_.find(id);
    if (it == dead_.end()) return MakeError("ResourceNotFoundException", "no dead-letter event " + id);
    d = it->second;
  }
  if (auto s = AppendLine(Dump(json{{"op", "Y"}, {"id", id}}), false); !s) return s.error();
  std::lock_guard lock(mu_);
  dead_.erase(id);
  return d;
}

std::vector<DeadEvent> EventLog::ListDead(const std::string& function) {
  std::lock_guard lock(mu_);
  std::vector<DeadEvent> out;
  for (const auto& [id, d] : dead_)
    if (function.empty() || d.data->function == function) out.push_back(d);
  std::sort(out.begin(), out.end(), [](const DeadEvent& a, const DeadEvent& b) { return a.dead_ms < b.dead_ms; });
  return out;
}

EventLogCounters EventLog::counters() {
  std::lock_guard lock(mu_);
  EventLogCounters c = counters_;
  c.bytes = size_;
  return c;
}

}  // namespace forklet::events
