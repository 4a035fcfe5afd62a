// Plain-file access to cgroupfs shared by the v1 and v2 backends: control files, pids, teardown.
#include "sandbox/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <limits>
#include <thread>

namespace forklet::sandbox::cgroupfs {
namespace {

using Clock = std::chrono::steady_clock;

// SIGKILL takes effect within milliseconds; two seconds means something is stuck (D state).
constexpr auto kTeardownBudget = std::chrono::seconds(2);

bool ParseU64(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end != s.data();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

// A killed process is usually gone in 0.2-0.5 ms; polling stays fine-grained (a re-check costs
// ~10 us) because longer sleeps showed up directly in the teardown time.
class Backoff {
 public:
  void Wait() {
    std::this_thread::sleep_for(pause_);
    pause_ = std::min(pause_ * 2, std::chrono::microseconds(1000));
  }

 private:
  std::chrono::microseconds pause_{50};
};

// SIGKILLs what the directories hold until they hold nothing.
Status KillAll(const std::vector<std::string>& dirs, Clock::time_point deadline) {
  const pid_t self = getpid();  // never ourselves, even if misplaced: then rmdir reports EBUSY
  Backoff backoff;
  for (;;) {
    bool killed_any = false;
    for (const auto& dir : dirs) {
      auto pids = ReadPids(dir + "/cgroup.procs");
      if (!pids) {
        if (pids.error().err == ENOENT) continue;  // this directory is gone already
        return pids.error();
      }
      for (int pid : *pids) {
        if (pid == self) continue;
        kill(pid, SIGKILL);
        killed_any = true;
      }
    }
    if (!killed_any) return {};
    if (Clock::now() >= deadline)
      return MakeError("kill the processes of " + dirs.front(), "still there after 2 s of SIGKILL");
    backoff.Wait();
  }
}

Status RemoveDirs(const std::vector<std::string>& dirs, Clock::time_point deadline,
                  const Remover& remove) {
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string& dir = dirs[i];
    auto remove_once = [&]() -> int {
      if (remove) return remove(dir, i);
      return rmdir(dir.c_str()) == 0 ? 0 : errno;
    };
    // EBUSY right after the last task exits is brief: the kernel settles the css asynchronously.
    Backoff backoff;
    for (int err; (err = remove_once()) != 0 && err != ENOENT;) {
      if (err != EBUSY || Clock::now() >= deadline) return SysError("remove cgroup " + dir, err);
      backoff.Wait();
    }
  }
  return {};
}

// Relative paths of the directories below `root` (each a cgroup), parents before children.
Status ListBelow(const std::string& root, const std::string& rel, std::vector<std::string>* out) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return {};  // removed meanwhile, or the hierarchy holds no root yet
    return SysError("opendir " + dir);
  }
  std::vector<std::string> children;
  while (dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (e->d_type != DT_DIR || n == "." || n == "..") continue;
    children.push_back(rel.empty() ? std::string(n) : rel + "/" + std::string(n));
  }
  closedir(d);
  for (auto& child : children) {
    out->push_back(child);
    if (auto s = ListBelow(root, child, out); !s) return s;
  }
  return {};
}

}  // namespace

int WriteControl(const std::string& path, std::string_view value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : (static_cast<size_t>(n) == value.size() ? 0 : EIO);
  close(fd);
  return err;
}

Status Write(const std::string& path, std::string_view value) {
  if (int err = WriteControl(path, value); err != 0)
    return SysError("write \"" + std::string(Trim(value)) + "\" to " + path, err);
  return {};
}

Result<std::string> Read(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError("open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return SysError("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

namespace {

// The text of a one-number control file; "max" reads as UINT64_MAX.
Result<uint64_t> ParseNumber(std::string_view text, const std::string& path) {
  std::string_view v = Trim(text);
  if (v == "max") return std::numeric_limits<uint64_t>::max();
  uint64_t n = 0;
  if (!ParseU64(v, &n))
    return MakeError("read " + path, "not a number: \"" + std::string(v) + "\"");
  return n;
}

// The number after `key` in a flat keyed file; 0 when the key is absent.
Result<uint64_t> ParseKeyed(std::string_view rest, std::string_view key, const std::string& path) {
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ')
      continue;
    uint64_t n = 0;
    if (!ParseU64(Trim(line.substr(key.size() + 1)), &n))
      return MakeError("read " + path, "bad \"" + std::string(key) + "\" line");
    return n;
  }
  return uint64_t{0};
}

}  // namespace

Result<uint64_t> ReadNumber(const std::string& path) {
  auto text = Read(path);
  if (!text) return text.error();
  return ParseNumber(*text, path);
}

Result<uint64_t> ReadKeyed(const std::string& path, std::string_view key) {
  auto text = Read(path);
  if (!text) return text.error();
  return ParseKeyed(*text, key, path);
}

Status ControlFile::Open() {
  if (fd_ >= 0) return {};
  fd_ = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);  // read-only counters
  if (fd_ < 0) return SysError("open " + path_);
  return {};
}

void ControlFile::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Result<std::string_view> ControlFile::ReadAll() {
  if (auto s = Open(); !s) return s.error();
  ssize_t n = pread(fd_, buf_, sizeof(buf_) - 1, 0);
  if (n < 0) return SysError("read " + path_);
  return std::string_view(buf_, static_cast<size_t>(n));
}

Result<uint64_t> ControlFile::ReadNumber() {
  auto text = ReadAll();
  if (!text) return text.error();
  return ParseNumber(*text, path_);
}

Result<uint64_t> ControlFile::ReadKeyed(std::string_view key) {
  auto text = ReadAll();
  if (!text) return text.error();
  return ParseKeyed(*text, key, path_);
}

Status ControlFile::Write(std::string_view value) {
  if (auto s = Open(); !s) return s;
  if (pwrite(fd_, value.data(), value.size(), 0) != static_cast<ssize_t>(value.size()))
    return SysError("write " + path_);
  return {};
}

Result<std::vector<int>> ReadPids(const std::string& procs_path) {
  auto text = Read(procs_path);
  if (!text) return text.error();
  std::vector<int> pids;
  const char* p = text->data();
  const char* end = p + text->size();
  while (p < end) {
    int pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc()) pids.push_back(pid);
    p = next;
    while (p < end && (*p < '0' || *p > '9')) ++p;
  }
  return pids;
}

Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0) return SysError("mkdir " + dir);
  return {};
}

Status KillAndRemove(const std::vector<std::string>& dirs, bool use_kill_file,
                     const Remover& remove) {
  if (dirs.empty()) return {};
  const auto deadline = Clock::now() + kTeardownBudget;
  if (use_kill_file) {
    // One write kills the whole subtree, racing forks included; the loop below then only waits.
    for (const auto& dir : dirs) (void)WriteControl(dir + "/cgroup.kill", "1");
  }
  // A frozen cgroup (an idle instance, also one a crashed predecessor left) keeps its tasks from
  // dying of SIGKILL on v1: thaw it. Writes to files a hierarchy does not have fail harmlessly.
  for (const auto& dir : dirs) {
    (void)WriteControl(dir + "/freezer.state", "THAWED");
    (void)WriteControl(dir + "/cgroup.freeze", "0");
  }
  if (auto s = KillAll(dirs, deadline); !s) return s;
  return RemoveDirs(dirs, deadline, remove);
}

Result<int> RemoveDescendants(const std::vector<std::string>& roots, bool use_kill_file,
                              const Remover& remove) {
  std::vector<std::string> rels;
  for (const auto& root : roots)
    if (auto s = ListBelow(root, "", &rels); !s) return s.error();
  std::sort(rels.begin(), rels.end());
  rels.erase(std::unique(rels.begin(), rels.end()), rels.end());
  // Deepest first: a cgroup with children cannot be removed.
  std::stable_sort(rels.begin(), rels.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  int removed = 0;
  Status first_error;
  for (const auto& rel : rels) {
    std::vector<std::string> dirs;
    for (const auto& root : roots) dirs.push_back(root + "/" + rel);
    if (auto s = KillAndRemove(dirs, use_kill_file, remove); s)
      ++removed;
    else if (first_error.ok())
      first_error = s;
  }
  if (!first_error) return first_error.error();
  return removed;
}

}  // namespace forklet::sandbox::cgroupfs
