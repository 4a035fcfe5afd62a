// The functions this daemon knows, with their code, persisted in the state dir.
//
// Every change is prepared in a staging directory (<state>/functions/.tmp-XXXXXX) on the same
// filesystem, flushed, and then published with rename(2); function.json is replaced atomically.
// The in-memory map changes only after the disk does, so an error leaves the previous state.
#include "runtime/registry/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>

#include "runtime/log/log.h"
#include "runtime/registry/durable_fs.h"

namespace forklet::registry {
namespace {

using nlohmann::json;

constexpr const char* kStateFile = "function.json";
constexpr const char* kTmpPrefix = ".tmp";
constexpr size_t kMaxStateFile = 1 << 20;

std::string NowLastModified() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%03d+0000", static_cast<int>(ms % 1000));
  return buf;
}

Error NotFound(const std::string& name) {
  return Error{"ResourceNotFoundException", 0, "Function not found: " + FunctionArn(name)};
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsFile(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}

// A staging directory that is removed unless published.
class Staging {
 public:
  static Result<Staging> Make(const std::string& functions_dir) {
    std::string templ = functions_dir + "/" + kTmpPrefix + "-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) return StorageError("mkdtemp " + templ, errno);
    if (::chmod(templ.c_str(), 0755) != 0) {
      int e = errno;
      RemoveTree(templ);
      return StorageError("chmod " + templ, e);
    }
    return Staging(templ);
  }
  Staging(Staging&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  Staging(const Staging&) = delete;
  ~Staging() {
    if (!path_.empty()) RemoveTree(path_);
  }
  const std::string& path() const { return path_; }
  void Published() { path_.clear(); }

 private:
  explicit Staging(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// Unpacks zip into dir/code (or dir/code/<rev>) and stores the zip beside it.
Status StageCode(std::string_view zip, const std::string& code_dir, const std::string& zip_path,
                 const ArchiveLimits& limits) {
  if (auto s = MakeDir(code_dir, 0755); !s) return s;
  auto unpacked = UnpackZip(zip, code_dir, limits);
  if (!unpacked) return unpacked.error();
  return WriteNewFile(zip_path, zip, 0644);
}

std::string StateJson(const FunctionConfig& config, uint64_t code_revision) {
  json j = ToStateJson(config);
  j["code_revision"] = code_revision;
  return j.dump(2) + "\n";
}

}  // namespace

struct Registry::Impl {
  struct Entry {
    Deployed deployed;
    uint64_t code_revision = 0;
  };

  std::string state_dir;
  std::string functions_dir;
  UniqueFd lock_fd;  // flock on <state>/registry.lock: one daemon per state dir
  ArchiveLimits limits;

  std::mutex write_mu;     // serializes changes on disk; held across a commit, never while unpacking
  mutable std::mutex mu;   // guards entries; held only briefly
  std::map<std::string, Entry> entries;

  std::string FunctionDir(const std::string& name) const { return functions_dir + "/" + name; }
  std::string CodeDir(const std::string& name, uint64_t rev) const {
    return FunctionDir(name) + "/code/" + std::to_string(rev);
  }

  Entry MakeEntry(const FunctionConfig& config, uint64_t code_revision) const {
    Entry e;
    e.deployed.config = config;
    e.deployed.code_dir = CodeDir(config.name, code_revision);
    e.deployed.zip_path = e.deployed.code_dir + ".zip";
    e.code_revision = code_revision;
    return e;
  }

  std::optional<Entry> Find(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = entries.find(name);
    if (it == entries.end()) return std::nullopt;
    return it->second;
  }

  Result<Entry> Load(const std::string& name);
  void RemoveCodeExcept(const std::string& name, uint64_t keep_a, uint64_t keep_b);
};

// Reads one function directory; removes what a crash in the middle of a change left behind.
Result<Registry::Impl::Entry> Registry::Impl::Load(const std::string& name) {
  std::string dir = FunctionDir(name);
  auto text = ReadSmallFile(dir + "/" + kStateFile, kMaxStateFile);
  if (!text) return text.error();
  json j = json::parse(text.value(), nullptr, false);
  if (j.is_discarded()) return MakeError("parse " + dir + "/" + kStateFile, "not valid JSON");
  auto config = FromStateJson(j);
  if (!config) return config.error();
  if (config->name != name)
    return MakeError("load " + dir, "function.json names '" + config->name + "'");
  if (!j.contains("code_revision") || !j["code_revision"].is_number_unsigned())
    return MakeError("load " + dir, "function.json has no code_revision");
  Entry e = MakeEntry(config.value(), j["code_revision"].get<uint64_t>());
  if (!IsDir(e.deployed.code_dir)) return MakeError("load " + dir, "missing " + e.deployed.code_dir);
  if (!IsFile(e.deployed.zip_path)) return MakeError("load " + dir, "missing " + e.deployed.zip_path);
  ::unlink((dir + "/" + kStateFile + ".tmp").c_str());
  // No instance survives a daemon restart, so only the current code is still needed.
  RemoveCodeExcept(name, e.code_revision, e.code_revision);
  return e;
}

// Removes every code revision (directory and zip) of a function except the two given.
void Registry::Impl::RemoveCodeExcept(const std::string& name, uint64_t keep_a, uint64_t keep_b) {
  std::string code = FunctionDir(name) + "/code";
  for (const std::string& n : ListDir(code)) {
    std::string a = std::to_string(keep_a), b = std::to_string(keep_b);
    if (n == a || n == a + ".zip" || n == b || n == b + ".zip") continue;
    RemoveTree(code + "/" + n);
  }
}

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

Result<std::unique_ptr<Registry>> Registry::Open(const std::string& state_dir,
                                                 ArchiveLimits limits) {
  if (state_dir.empty()) return MakeError("open registry", "empty state dir");
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Error{"create " + state_dir, ec.value(), {}};
  char* real = ::realpath(state_dir.c_str(), nullptr);
  if (real == nullptr) return SysError("realpath " + state_dir);
  auto impl = std::make_unique<Impl>();
  impl->state_dir = real;
  free(real);
  // Open removes staging leftovers, which would break a second daemon's changes in progress.
  const std::string lock_path = impl->state_dir + "/registry.lock";
  impl->lock_fd = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!impl->lock_fd.valid()) return SysError("open " + lock_path);
  if (::flock(impl->lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return MakeError("open registry", "state dir " + impl->state_dir + " is in use by another forkletd");
    return SysError("flock " + lock_path);
  }
  impl->functions_dir = impl->state_dir + "/functions";
  impl->limits = limits;
  if (::mkdir(impl->functions_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return SysError("mkdir " + impl->functions_dir);
  if (!IsDir(impl->functions_dir)) return MakeError("open registry", impl->functions_dir + " is not a directory");
  if (::access(impl->functions_dir.c_str(), R_OK | W_OK | X_OK) != 0)
    return SysError("access " + impl->functions_dir);

  for (const std::string& n : ListDir(impl->functions_dir)) {
    std::string path = impl->functions_dir + "/" + n;
    if (StartsWith(n, kTmpPrefix)) {  // staging or trash of an interrupted change
      RemoveTree(path);
      continue;
    }
    if (!IsDir(path) || !ValidateName(n)) {
      log::Warning("registry: skipping " + path + ": not a function directory");
      continue;
    }
    auto e = impl->Load(n);
    if (!e) {
      log::Warning("registry: skipping function " + n + ": " + e.error().ToString());
      continue;
    }
    impl->entries.emplace(n, std::move(e.value()));
  }
  return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}

Result<Deployed> Registry::Create(FunctionConfig config, std::string_view zip) {
  if (auto s = ValidateConfig(config); !s) return s.error();
  const std::string name = config.name;
  auto conflict = [&] {
    return Error{"ResourceConflictException", 0, "Function already exist: " + name};
  };
  if (impl_->Find(name)) return conflict();

  config.code_sha256 = Sha256Base64(zip);
  config.code_size = zip.size();
  config.revision = 1;
  config.last_modified = NowLastModified();
  const uint64_t code_rev = config.revision;

  // The whole function directory is built aside and appears with one rename.
  auto staging = Staging::Make(impl_->functions_dir);
  if (!staging) return staging.error();
  const std::string& st = staging->path();
  if (auto s = MakeDir(st + "/code", 0755); !s) return s.error();
  const std::string rev = std::to_string(code_rev);
  if (auto s = StageCode(zip, st + "/code/" + rev, st + "/code/" + rev + ".zip", impl_->limits); !s)
    return s.error();
  if (auto s = WriteFileAtomic(st, kStateFile, StateJson(config, code_rev)); !s) return s.error();
  if (auto s = SyncFilesystem(st); !s) return s.error();

  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  if (impl_->Find(name)) return conflict();
  const std::string dir = impl_->FunctionDir(name);
  if (::rename(st.c_str(), dir.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) return StorageError("rename " + st, errno);
    // A directory Open could not load (it logged why) is in the way; the new function replaces it.
    log::Warning("registry: replacing unloadable " + dir);
    std::string trash = impl_->functions_dir + "/" + kTmpPrefix + "-broken-" + name;
    RemoveTree(trash);
    if (::rename(dir.c_str(), trash.c_str()) != 0) return StorageError("rename " + dir, errno);
    RemoveTree(trash);
    if (::rename(st.c_str(), dir.c_str()) != 0) return StorageError("rename " + st, errno);
  }
  staging->Published();
  if (auto s = FsyncPath(impl_->functions_dir); !s)
    log::Warning("registry: " + s.error().ToString());

  Impl::Entry e = impl_->MakeEntry(config, code_rev);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->entries[name] = e;
  return e.deployed;
}

Result<Deployed> Registry::UpdateCode(const std::string& name, std::string_view zip) {
  if (!impl_->Find(name)) return NotFound(name);

  auto staging = Staging::Make(impl_->functions_dir);
  if (!staging) return staging.error();
  const std::string staged_code = staging->path() + "/code";
  const std::string staged_zip = staging->path() + "/code.zip";
  if (auto s = StageCode(zip, staged_code, staged_zip, impl_->limits); !s) return s.error();
  if (auto s = SyncFilesystem(staging->path()); !s) return s.error();
  const std::string sha = Sha256Base64(zip);

  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);  // may have been deleted while unpacking
  if (!cur) return NotFound(name);
  FunctionConfig next = cur->deployed.config;
  next.revision += 1;
  next.code_sha256 = sha;
  next.code_size = zip.size();
  next.last_modified = NowLastModified();
  const uint64_t code_rev = next.revision;
  Impl::Entry e = impl_->MakeEntry(next, code_rev);

  // A stray directory of this revision number can only be debris of a failed attempt.
  RemoveTree(e.deployed.code_dir);
  RemoveTree(e.deployed.zip_path);
  if (::rename(staged_code.c_str(), e.deployed.code_dir.c_str()) != 0)
    return StorageError("rename " + staged_code, errno);
  auto undo = [&](Error err) -> Error {
    RemoveTree(e.deployed.code_dir);
    RemoveTree(e.deployed.zip_path);
    return err;
  };
  if (::rename(staged_zip.c_str(), e.deployed.zip_path.c_str()) != 0)
    return undo(StorageError("rename " + staged_zip, errno));
  // The switch: function.json names the new revision from here on.
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile, StateJson(next, code_rev)); !s)
    return undo(s.error());
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->entries[name] = e;
  }
  // Running instances see their code through a bind mount of the old directory, and removing
  // the directory's files would empty their /var/task; so the previous revision stays until
  // the next change (or restart), and only older ones go now.
  impl_->RemoveCodeExcept(name, code_rev, cur->code_revision);
  return e.deployed;
}

Result<Deployed> Registry::UpdateConfiguration(const std::string& name, const json& changes) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  auto next = ApplyLambdaChanges(cur->deployed.config, changes);
  if (!next) return next.error();
  next->name = name;
  if (auto s = ValidateConfig(next.value()); !s) return s.error();
  next->revision += 1;
  next->last_modified = NowLastModified();
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               StateJson(next.value(), cur->code_revision));
      !s)
    return s.error();
  Impl::Entry e = impl_->MakeEntry(next.value(), cur->code_revision);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->entries[name] = e;
  return e.deployed;
}

Status Registry::Delete(const std::string& name) {
  std::string trash;
  {
    std::lock_guard<std::mutex> wlock(impl_->write_mu);
    if (!impl_->Find(name)) return NotFound(name);
    // Moved under a unique ".tmp" name first: the function vanishes at once, and a crash during
    // the slow recursive removal leaves only debris that Open removes.
    auto staging = Staging::Make(impl_->functions_dir);
    if (!staging) return staging.error();
    const std::string dir = impl_->FunctionDir(name);
    if (::rename(dir.c_str(), (staging->path() + "/" + name).c_str()) != 0)
      return StorageError("rename " + dir, errno);
    if (auto s = FsyncPath(impl_->functions_dir); !s)
      log::Warning("registry: " + s.error().ToString());
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->entries.erase(name);
    }
    trash = staging->path();
    staging->Published();
  }
  RemoveTree(trash);  // outside the write lock: other changes need not wait for it
  return {};
}

std::optional<Deployed> Registry::Get(const std::string& name) const {
  auto e = impl_->Find(name);
  if (!e) return std::nullopt;
  return e->deployed;
}

std::vector<Deployed> Registry::List() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Deployed> out;
  out.reserve(impl_->entries.size());
  for (const auto& [name, e] : impl_->entries) out.push_back(e.deployed);  // map: sorted by name
  return out;
}

}  // namespace forklet::registry
