// The billing ledger: one SQLite row per finished invocation, in STATE_DIR/ledger.db (WAL).
#include "runtime/billing/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/log/log.h"

namespace forklet::billing {
namespace {

namespace fs = std::filesystem;

// Version 2. Rows go in at the right edge of every b-tree: the rowid and (start_ms, request_id),
// which also serves the bills' time ranges and makes a replayed record (same request, same start)
// a conflict. Version 1 made the random request id the primary key: past a few hundred thousand
// rows, each insert read and dirtied a random index page (the flusher spent ~40 us of CPU per
// row, writing ~4 KB of WAL for each, and held a CPU for milliseconds the invocations waited for).
constexpr const char* kStoredColumns =
    "request_id, function, runtime, start_kind, outcome, start_ms, end_ms, init_ms, duration_ms,"
    " latency_ms, billed_ms, memory_mb, max_memory_mb, cpu_ms, mb_ms, request_cost_pd,"
    " compute_cost_pd";
constexpr const char* kInvocationColumns = R"(
  request_id      TEXT NOT NULL,
  function        TEXT NOT NULL,
  runtime         TEXT NOT NULL,
  start_kind      TEXT NOT NULL CHECK (start_kind IN ('cold','zygote','warm','restore','none')),
  outcome         TEXT NOT NULL CHECK (outcome IN ('success','handled','unhandled','timeout','oom',
                                                   'crashed','throttled','setup_failed')),
  start_ms        INTEGER NOT NULL,  -- epoch ms
  end_ms          INTEGER NOT NULL,
  init_ms         REAL NOT NULL,
  duration_ms     REAL NOT NULL,
  latency_ms      REAL NOT NULL,
  billed_ms       INTEGER NOT NULL,
  memory_mb       INTEGER NOT NULL,
  max_memory_mb   INTEGER NOT NULL,
  cpu_ms          REAL NOT NULL,
  mb_ms           INTEGER NOT NULL,  -- GB-seconds x 1024000 (exact)
  request_cost_pd INTEGER NOT NULL,  -- picodollars
  compute_cost_pd INTEGER NOT NULL,
  cost_pd         INTEGER NOT NULL GENERATED ALWAYS AS (request_cost_pd + compute_cost_pd) VIRTUAL,
  gb_seconds      REAL NOT NULL GENERATED ALWAYS AS (mb_ms / 1024000.0) VIRTUAL
)";

constexpr const char* kOtherSchema = R"(
CREATE UNIQUE INDEX IF NOT EXISTS invocations_by_start ON invocations (start_ms, request_id);
CREATE TABLE IF NOT EXISTS events (
  request_id TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('accepted','run','retried','expired','dead_lettered')),
  attempt    INTEGER NOT NULL,
  function   TEXT NOT NULL,
  at_ms      INTEGER NOT NULL,  -- epoch ms
  PRIMARY KEY (request_id, kind, attempt)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at_ms);
PRAGMA user_version = 2;
)";

std::string Schema() {
  return std::string("CREATE TABLE IF NOT EXISTS invocations (") + kInvocationColumns + ");" + kOtherSchema;
}

// Version 1 to 2: the same rows in a table without the request id as its key (one transaction).
std::string MigrateFrom1() {
  std::string cols = kStoredColumns;
  return "BEGIN IMMEDIATE;"
         "CREATE TABLE invocations_v2 (" + std::string(kInvocationColumns) + ");"
         "INSERT INTO invocations_v2 (" + cols + ") SELECT " + cols +
         " FROM invocations ORDER BY start_ms, request_id;"
         "DROP TABLE invocations;"
         "ALTER TABLE invocations_v2 RENAME TO invocations;"
         "CREATE UNIQUE INDEX invocations_by_start ON invocations (start_ms, request_id);"
         "PRAGMA user_version = 2;"
         "COMMIT;";
}

std::string InsertSql() {
  return std::string("INSERT INTO invocations (") + kStoredColumns +
         ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING";
}

constexpr const char* kInsertEvent =
    "INSERT INTO events (request_id, kind, attempt, function, at_ms) VALUES (?,?,?,?,?)"
    " ON CONFLICT DO NOTHING";

constexpr int kFields = 17;
constexpr const char* kEventTag = "event";  // first field of an event line (6 fields, not 17)
constexpr uint64_t kEagerFlushBytes = 4 << 20;  // wake the flusher early past this much log
constexpr size_t kMaxHeld = 100'000;              // records kept in memory while the log is full

// The background flusher sleeps briefly after every kPacedRows rows (~10-12 us of CPU each). A
// thread that runs on never gives its CPU to an instance woken there: the scheduler lets it
// finish its slice (milliseconds), and an instance in its own cgroup cannot preempt the daemon's
// threads. One flush in one go held a CPU for 2-4 ms every 100 ms, the warm tail at one
// connection (perf sched timehist: the runner runnable behind it while the other CPU idled).
constexpr uint64_t kPacedRows = 8;
void Pause() {
  timespec t{0, 20'000};  // plus the timer slack: the CPU is free for ~70 us
  nanosleep(&t, nullptr);
}

bool OneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (v == a) return true;
  return false;
}

// A name goes into a tab-separated line: no separators, no control characters.
bool CleanName(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

Error SqlError(sqlite3* db, const std::string& op) {
  return MakeError("ledger: " + op, db ? sqlite3_errmsg(db) : "out of memory");
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return MakeError(std::string("ledger: ") + sql, m);
  }
  return {};
}

Result<int> UserVersion(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) != SQLITE_OK)
    return SqlError(db, "read the schema version");
  int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
  sqlite3_finalize(s);
  return v;
}

Result<sqlite3*> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = SqlError(db, "open " + path);
    sqlite3_close(db);
    return e;
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

// One log line: the 17 columns, tab-separated; numbers by std::to_chars (doubles in their
// shortest form that reads back exactly), which is several times faster than printf.
class LineWriter {
 public:
  void Text(const std::string& v) {
    size_t n = std::min(v.size(), static_cast<size_t>(end_ - p_ - 1));
    memcpy(p_, v.data(), n);
    p_ += n;
    Sep();
  }
  template <typename T>
  void Number(T v) {
    p_ = std::to_chars(p_, end_ - 1, v).ptr;
    Sep();
  }
  std::string_view Done() {
    p_[-1] = '\n';  // the last separator ends the line
    return {buf_, static_cast<size_t>(p_ - buf_)};
  }

 private:
  void Sep() { *p_++ = '\t'; }
  char buf_[1536];
  char* p_ = buf_;
  char* end_ = buf_ + sizeof(buf_) - 32;  // room left for the numbers after the names (<= 256 each)
};

void FormatLine(const LedgerRecord& r, LineWriter* w) {
  w->Text(r.request_id);
  w->Text(r.function);
  w->Text(r.runtime);
  w->Text(r.start_kind);
  w->Text(r.outcome);
  w->Number(static_cast<long long>(r.start_ms));
  w->Number(static_cast<long long>(r.end_ms));
  w->Number(r.init_ms);
  w->Number(r.duration_ms);
  w->Number(r.latency_ms);
  w->Number(static_cast<unsigned long long>(r.billed_ms));
  w->Number(r.memory_mb);
  w->Number(static_cast<unsigned long long>(r.max_memory_mb));
  w->Number(r.cpu_ms);
  w->Number(static_cast<long long>(r.mb_ms));
  w->Number(static_cast<long long>(r.request_cost_pd));
  w->Number(static_cast<long long>(r.compute_cost_pd));
}

// The inverse of FormatLine (without the newline); false for anything malformed.
bool ParseLine(std::string_view line, LedgerRecord* r) {
  std::string_view f[kFields];
  int n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      if (n == kFields) return false;
      f[n++] = line.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n != kFields) return false;
  auto integer = [](std::string_view s, long long* out) {
    std::string t(s);
    char* end = nullptr;
    errno = 0;
    *out = strtoll(t.c_str(), &end, 10);
    return !t.empty() && *end == 0 && errno == 0;
  };
  auto real = [](std::string_view s, double* out) {
    std::string t(s);
    char* end = nullptr;
    *out = strtod(t.c_str(), &end);
    return !t.empty() && *end == 0;
  };
  long long v[10];
  double d[4];
  if (!integer(f[5], &v[0]) || !integer(f[6], &v[1]) || !real(f[7], &d[0]) || !real(f[8], &d[1]) ||
      !real(f[9], &d[2]) || !integer(f[10], &v[2]) || !integer(f[11], &v[3]) ||
      !integer(f[12], &v[4]) || !real(f[13], &d[3]) || !integer(f[14], &v[5]) ||
      !integer(f[15], &v[6]) || !integer(f[16], &v[7]))
    return false;
  r->request_id = f[0];
  r->function = f[1];
  r->runtime = f[2];
  r->start_kind = f[3];
  r->outcome = f[4];
  r->start_ms = v[0];
  r->end_ms = v[1];
  r->init_ms = d[0];
  r->duration_ms = d[1];
  r->latency_ms = d[2];
  r->billed_ms = static_cast<uint64_t>(v[2]);
  r->memory_mb = static_cast<uint32_t>(v[3]);
  r->max_memory_mb = static_cast<uint64_t>(v[4]);
  r->cpu_ms = d[3];
  r->mb_ms = v[5];
  r->request_cost_pd = v[6];
  r->compute_cost_pd = v[7];
  return true;
}

// "event\tID\tFUNCTION\tKIND\tATTEMPT\tAT_MS"; false for anything else.
bool ParseEventLine(std::string_view line, EventRecord* r) {
  std::string_view f[6];
  int n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      if (n == 6) return false;
      f[n++] = line.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n != 6 || f[0] != kEventTag) return false;
  long long attempt = 0, at = 0;
  if (std::from_chars(f[4].data(), f[4].data() + f[4].size(), attempt).ec != std::errc() ||
      std::from_chars(f[5].data(), f[5].data() + f[5].size(), at).ec != std::errc())
    return false;
  r->request_id = f[1];
  r->function = f[2];
  r->kind = f[3];
  r->attempt = static_cast<uint32_t>(attempt);
  r->at_ms = at;
  return true;
}

uint64_t NsSince(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, LedgerOptions options) {
  std::unique_ptr<Ledger> l(new Ledger(path, options));
  if (auto s = l->Init(); !s) return s.error();
  return l;
}

std::string Ledger::LogPath(uint64_t seq) const { return path_ + ".log." + std::to_string(seq); }

Result<int> Ledger::OpenLog(uint64_t seq) {
  int fd = open(LogPath(seq).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("ledger: open " + LogPath(seq));
  return fd;
}

Status Ledger::Init() {
  // Billing data is the operator's alone; SQLite gives its -wal and -shm files the same mode.
  int made = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (made < 0) return SysError("ledger: create " + path_);
  close(made);
  auto w = OpenDb(path_);
  if (!w) return w.error();
  writer_ = *w;
  // WAL: outside readers (the bill, an operator's sqlite3) never block the flusher.
  // Small checkpoints (64 pages, ~256 KB; about one per flush) rather than SQLite's 1000 pages: a
  // checkpoint copies its pages in one go, and at 1000 it held a CPU for ~3 ms (see Pause).
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                             "PRAGMA wal_autocheckpoint=64"}) {
    if (auto s = Exec(writer_, pragma); !s) return s;
  }
  if (auto v = UserVersion(writer_); !v) {
    return v.error();
  } else if (*v == 1) {
    log::Info("ledger: " + path_ + ": moving the rows to schema version 2 (once)");
    if (auto s = Exec(writer_, MigrateFrom1().c_str()); !s) {
      (void)Exec(writer_, "ROLLBACK");
      return s;
    }
  } else if (*v > 2) {
    return MakeError("ledger: " + path_, "schema version " + std::to_string(*v) +
                                             " is newer than this forkletd's (2): use the newer forkletd");
  }
  if (auto s = Exec(writer_, Schema().c_str()); !s) return s;
  if (sqlite3_prepare_v3(writer_, InsertSql().c_str(), -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) != SQLITE_OK)
    return SqlError(writer_, "prepare insert");
  if (sqlite3_prepare_v3(writer_, kInsertEvent, -1, SQLITE_PREPARE_PERSISTENT, &insert_event_, nullptr) !=
      SQLITE_OK)
    return SqlError(writer_, "prepare event insert");
  auto r = OpenDb(path_);
  if (!r) return r.error();
  reader_ = *r;

  // What a previous process logged but did not move into SQLite (it was killed), oldest first.
  std::error_code ec;
  fs::path p(path_);
  std::string prefix = p.filename().string() + ".log.";
  uint64_t next = 1;
  for (const auto& e : fs::directory_iterator(p.parent_path().empty() ? "." : p.parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    uint64_t seq = std::stoull(digits);
    unflushed_.push_back(seq);
    next = std::max(next, seq + 1);
  }
  if (ec) return SysError("ledger: list " + p.parent_path().string(), ec.value());
  std::sort(unflushed_.begin(), unflushed_.end());
  while (!unflushed_.empty()) {
    if (auto s = ReplayLog(unflushed_.front()); !s) return s;
    unflushed_.erase(unflushed_.begin());
  }
  auto fd = OpenLog(next);
  if (!fd) return fd.error();
  log_fd_ = *fd;
  log_seq_ = next;
  flusher_ = std::thread([this] { FlushLoop(); });
  return {};
}

Ledger::~Ledger() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (writer_ && log_fd_ >= 0) {
    if (auto s = Flush(); !s) log::Error(s.error().ToString() + " (kept for the next start)");
  }
  if (!held_.empty())
    log::Error("ledger: " + std::to_string(held_.size()) +
               " records held in memory are lost: the log still has no room");
  if (log_fd_ >= 0) {
    close(log_fd_);
    struct stat st {};
    if (stat(LogPath(log_seq_).c_str(), &st) == 0 && st.st_size == 0) unlink(LogPath(log_seq_).c_str());
  }
  sqlite3_finalize(insert_);
  sqlite3_finalize(insert_event_);
  sqlite3_close(reader_);
  if (writer_) {
    // A clean stop leaves no WAL behind.
    (void)sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_close(writer_);
  }
}

Status Ledger::Record(const LedgerRecord& r) {
  auto t0 = std::chrono::steady_clock::now();
  if (!CleanName(r.request_id) || !CleanName(r.function) || !CleanName(r.runtime) ||
      !OneOf(r.start_kind, {"cold", "zygote", "warm", "restore", "none"}) ||
      !OneOf(r.outcome, {"success", "handled", "unhandled", "timeout", "oom", "crashed", "throttled",
                         "setup_failed"})) {
    errors_++;
    return MakeError("ledger: record " + r.request_id, "malformed (a name, start kind or outcome)");
  }
  LineWriter writer;
  FormatLine(r, &writer);
  if (auto s = AppendLine(writer.Done(), r.request_id); !s) return s;
  append_ns_ += NsSince(t0);
  return {};
}

Status Ledger::RecordEvent(const EventRecord& r) {
  if (!CleanName(r.request_id) || !CleanName(r.function) ||
      !OneOf(r.kind, {"accepted", "run", "retried", "expired", "dead_lettered"})) {
    errors_++;
    return MakeError("ledger: event record " + r.request_id, "malformed (a name or kind)");
  }
  std::string line = std::string(kEventTag) + "\t" + r.request_id + "\t" + r.function + "\t" + r.kind +
                     "\t" + std::to_string(r.attempt) + "\t" + std::to_string(r.at_ms) + "\n";
  return AppendLine(line, r.request_id);
}

Status Ledger::AppendLine(std::string_view line, const std::string& what) {
  bool wake = false;
  {
    std::lock_guard lock(log_mu_);
    DrainHeldLocked();
    int e = held_.empty() ? AppendLocked(line) : ENOSPC;
    if (e != 0) {
      // The log cannot take it (a full disk): held in memory, in order, and appended as soon as
      // there is room. Only the death of the daemon before then loses it.
      if (held_.size() >= kMaxHeld) {
        errors_++;
        return SysError("ledger: append to " + LogPath(log_seq_) + " (and " +
                            std::to_string(kMaxHeld) + " records already held in memory): lost " +
                            what,
                        e);
      }
      held_.emplace_back(line);
      return SysError("ledger: append to " + LogPath(log_seq_) + ": " + std::to_string(held_.size()) +
                          " records held in memory until it has room",
                      e);
    }
    wake = log_size_ > kEagerFlushBytes;
  }
  if (wake) stop_cv_.notify_all();
  records_++;
  return {};
}

int Ledger::AppendLocked(std::string_view line) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(log_fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      // No half line may stay in front of the next record.
      (void)!ftruncate(log_fd_, static_cast<off_t>(log_size_));
      return e;
    }
    done += static_cast<size_t>(n);
  }
  log_size_ += line.size();
  return 0;
}

void Ledger::DrainHeldLocked() {
  while (!held_.empty() && AppendLocked(held_.front()) == 0) {
    held_.pop_front();
    records_++;
  }
}

Status Ledger::ReplayLog(uint64_t seq, bool paced) {
  std::string path = LogPath(seq);
  FILE* f = fopen(path.c_str(), "re");
  if (!f) {
    if (errno == ENOENT) return {};
    return SysError("ledger: read " + path);
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  bool read_error = ferror(f);
  fclose(f);
  if (read_error) return SysError("ledger: read " + path, EIO);

  auto t0 = std::chrono::steady_clock::now();
  if (auto s = Exec(writer_, "BEGIN IMMEDIATE"); !s) return s;
  uint64_t inserted = 0, duplicates = 0, bad = 0;
  size_t start = 0;
  for (uint64_t lines = 0; start < text.size(); ++lines) {
    if (paced && lines > 0 && lines % kPacedRows == 0) Pause();
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      // A line cut short by the death of the process writing it: its client got no response.
      log::Warning("ledger: " + path + " ends in an incomplete record; ignored");
      break;
    }
    LedgerRecord r;
    std::string_view one = std::string_view(text).substr(start, nl - start);
    if (!ParseLine(one, &r)) {
      EventRecord ev;
      start = nl + 1;
      if (!ParseEventLine(one, &ev)) {
        bad++;
        continue;
      }
      sqlite3_stmt* s = insert_event_;
      BindText(s, 1, ev.request_id);
      BindText(s, 2, ev.kind);
      sqlite3_bind_int64(s, 3, ev.attempt);
      BindText(s, 4, ev.function);
      sqlite3_bind_int64(s, 5, ev.at_ms);
      int rc = sqlite3_step(s);
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
      if (rc == SQLITE_CONSTRAINT) {
        bad++;
      } else if (rc != SQLITE_DONE) {
        Error e = SqlError(writer_, "insert event from " + path);
        (void)Exec(writer_, "ROLLBACK");
        return e;
      }
      continue;
    }
    start = nl + 1;
    sqlite3_stmt* s = insert_;
    BindText(s, 1, r.request_id);
    BindText(s, 2, r.function);
    BindText(s, 3, r.runtime);
    BindText(s, 4, r.start_kind);
    BindText(s, 5, r.outcome);
    sqlite3_bind_int64(s, 6, r.start_ms);
    sqlite3_bind_int64(s, 7, r.end_ms);
    sqlite3_bind_double(s, 8, r.init_ms);
    sqlite3_bind_double(s, 9, r.duration_ms);
    sqlite3_bind_double(s, 10, r.latency_ms);
    sqlite3_bind_int64(s, 11, static_cast<int64_t>(r.billed_ms));
    sqlite3_bind_int64(s, 12, r.memory_mb);
    sqlite3_bind_int64(s, 13, static_cast<int64_t>(r.max_memory_mb));
    sqlite3_bind_double(s, 14, r.cpu_ms);
    sqlite3_bind_int64(s, 15, r.mb_ms);
    sqlite3_bind_int64(s, 16, r.request_cost_pd);
    sqlite3_bind_int64(s, 17, r.compute_cost_pd);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc == SQLITE_DONE) {
      (sqlite3_changes(writer_) ? inserted : duplicates)++;
    } else if (rc == SQLITE_CONSTRAINT) {
      bad++;  // a row the schema refuses can never be stored; the rest must be
    } else {
      Error e = SqlError(writer_, "insert from " + path);
      (void)Exec(writer_, "ROLLBACK");
      return e;  // the log stays for the next attempt
    }
  }
  if (auto s = Exec(writer_, "COMMIT"); !s) {
    (void)Exec(writer_, "ROLLBACK");
    return s;
  }
  // Committed: the log may go. A crash right here replays it; the primary key ignores repeats.
  unlink(path.c_str());
  rows_ += inserted;
  duplicates_ += duplicates;
  errors_ += bad;
  commits_++;
  commit_ns_ += NsSince(t0);
  if (bad) log::Error("ledger: " + std::to_string(bad) + " malformed records in " + path + " not stored");
  return {};
}

Status Ledger::Flush() { return FlushPaced(false); }

Status Ledger::FlushPaced(bool paced) {
  std::lock_guard flush_lock(flush_mu_);
  uint64_t size;
  {
    std::lock_guard lock(log_mu_);
    DrainHeldLocked();
    size = log_size_;
  }
  if (size > 0) {
    // A fresh log takes the appends from here on; the full one is moved into SQLite.
    auto fd = OpenLog(log_seq_ + 1);
    if (!fd) return fd.error();
    int old_fd;
    uint64_t old_seq;
    {
      std::lock_guard lock(log_mu_);
      old_fd = log_fd_;
      old_seq = log_seq_;
      log_fd_ = *fd;
      log_seq_++;
      log_size_ = 0;
    }
    close(old_fd);
    unflushed_.push_back(old_seq);
  }
  while (!unflushed_.empty()) {
    if (auto s = ReplayLog(unflushed_.front(), paced); !s) return s;
    unflushed_.erase(unflushed_.begin());
  }
  return {};
}

void Ledger::FlushLoop() {
  // Background work: on a busy node the invocations' threads go first (nice 10, this thread only).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  std::string last_error;
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.flush_interval);
    if (stopping_) break;
    lock.unlock();
    auto s = FlushPaced(true);
    std::string e = s ? "" : s.error().ToString();
    if (e != last_error && !e.empty()) log::Error(e + " (retrying; records stay in the log)");
    last_error = e;
    lock.lock();
  }
}

LedgerCounters Ledger::counters() const {
  LedgerCounters c;
  c.records = records_.load();
  c.rows = rows_.load();
  c.duplicates = duplicates_.load();
  c.errors = errors_.load();
  {
    std::lock_guard lock(log_mu_);
    c.held = held_.size();
  }
  c.commits = commits_.load();
  c.append_seconds = static_cast<double>(append_ns_.load()) / 1e9;
  c.commit_seconds = static_cast<double>(commit_ns_.load()) / 1e9;
  return c;
}

Result<std::vector<FunctionUsage>> Ledger::Usage(int64_t from_ms, int64_t to_ms,
                                                 const std::string& function) {
  if (auto s = Flush(); !s) return s.error();
  static const char* kSql =
      "SELECT function, COUNT(*),"
      " SUM(outcome NOT IN ('throttled','setup_failed')),"
      " SUM(outcome = 'throttled'),"
      " SUM(outcome NOT IN ('success','throttled','setup_failed')),"
      " SUM(billed_ms), SUM(mb_ms), SUM(request_cost_pd), SUM(compute_cost_pd)"
      " FROM invocations WHERE start_ms >= ?1 AND start_ms < ?2 AND (?3 = '' OR function = ?3)"
      " GROUP BY function ORDER BY function";
  std::lock_guard lock(reader_mu_);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(reader_, kSql, -1, &s, nullptr) != SQLITE_OK)
    return SqlError(reader_, "prepare usage query");
  sqlite3_bind_int64(s, 1, from_ms);
  sqlite3_bind_int64(s, 2, to_ms);
  BindText(s, 3, function);
  std::vector<FunctionUsage> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    FunctionUsage u;
    u.function = ColumnText(s, 0);
    u.invocations = sqlite3_column_int64(s, 1);
    u.requests = sqlite3_column_int64(s, 2);
    u.throttled = sqlite3_column_int64(s, 3);
    u.errors = sqlite3_column_int64(s, 4);
    u.billed_ms = sqlite3_column_int64(s, 5);
    u.mb_ms = sqlite3_column_int64(s, 6);
    u.request_cost_pd = sqlite3_column_int64(s, 7);
    u.compute_cost_pd = sqlite3_column_int64(s, 8);
    out.push_back(std::move(u));
  }
  Error e = SqlError(reader_, "usage query");  // read before finalize resets it
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return e;  // SUM overflow is an error here, never a wrong total

  // Event steps in the window, merged in by function (one may have events and no invocation).
  static const char* kEventSql =
      "SELECT function, kind, COUNT(*) FROM events"
      " WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 = '' OR function = ?3) GROUP BY function, kind";
  if (sqlite3_prepare_v2(reader_, kEventSql, -1, &s, nullptr) != SQLITE_OK)
    return SqlError(reader_, "prepare event usage query");
  sqlite3_bind_int64(s, 1, from_ms);
  sqlite3_bind_int64(s, 2, to_ms);
  BindText(s, 3, function);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    std::string fn = ColumnText(s, 0), kind = ColumnText(s, 1);
    int64_t n = sqlite3_column_int64(s, 2);
    auto it = std::lower_bound(out.begin(), out.end(), fn,
                               [](const FunctionUsage& u, const std::string& f) { return u.function < f; });
    if (it == out.end() || it->function != fn) {
      it = out.insert(it, FunctionUsage{});
      it->function = fn;
    }
    if (kind == "accepted") it->events_accepted += n;
    else if (kind == "run") it->events_run += n;
    else if (kind == "retried") it->events_retried += n;
    else if (kind == "expired") it->events_expired += n;
    else if (kind == "dead_lettered") it->events_dead_lettered += n;
  }
  e = SqlError(reader_, "event usage query");
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return e;
  return out;
}

Result<std::vector<LedgerRecord>> Ledger::Records(int64_t from_ms, int64_t to_ms,
                                                  const std::string& function) {
  if (auto s = Flush(); !s) return s.error();
  static const char* kSql =
      "SELECT request_id, function, runtime, start_kind, outcome, start_ms, end_ms, init_ms,"
      " duration_ms, latency_ms, billed_ms, memory_mb, max_memory_mb, cpu_ms, mb_ms,"
      " request_cost_pd, compute_cost_pd FROM invocations"
      " WHERE start_ms >= ?1 AND start_ms < ?2 AND (?3 = '' OR function = ?3)"
      " ORDER BY start_ms, request_id";
  std::lock_guard lock(reader_mu_);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(reader_, kSql, -1, &s, nullptr) != SQLITE_OK)
    return SqlError(reader_, "prepare records query");
  sqlite3_bind_int64(s, 1, from_ms);
  sqlite3_bind_int64(s, 2, to_ms);
  BindText(s, 3, function);
  std::vector<LedgerRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    LedgerRecord r;
    r.request_id = ColumnText(s, 0);
    r.function = ColumnText(s, 1);
    r.runtime = ColumnText(s, 2);
    r.start_kind = ColumnText(s, 3);
    r.outcome = ColumnText(s, 4);
    r.start_ms = sqlite3_column_int64(s, 5);
    r.end_ms = sqlite3_column_int64(s, 6);
    r.init_ms = sqlite3_column_double(s, 7);
    r.duration_ms = sqlite3_column_double(s, 8);
    r.latency_ms = sqlite3_column_double(s, 9);
    r.billed_ms = static_cast<uint64_t>(sqlite3_column_int64(s, 10));
    r.memory_mb = static_cast<uint32_t>(sqlite3_column_int64(s, 11));
    r.max_memory_mb = static_cast<uint64_t>(sqlite3_column_int64(s, 12));
    r.cpu_ms = sqlite3_column_double(s, 13);
    r.mb_ms = sqlite3_column_int64(s, 14);
    r.request_cost_pd = sqlite3_column_int64(s, 15);
    r.compute_cost_pd = sqlite3_column_int64(s, 16);
    out.push_back(std::move(r));
  }
  Error e = SqlError(reader_, "records query");
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return e;
  return out;
}

}  // namespace forklet::billing
