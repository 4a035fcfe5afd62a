// The functions this daemon knows, with their code, persisted in the state dir.
//
// Every change is prepared in a staging directory (<state>/functions/.tmp-XXXXXX or
// <state>/code/.tmp-XXXXXX) on the same filesystem, flushed, and then published with rename(2);
// function.json is replaced atomically. The in-memory map changes only after the disk does, so an
// error leaves the previous state.
#include "runtime/registry/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <cerrno>
#include <set>

#include "runtime/log/log.h"
#include "runtime/registry/durable_fs.h"
#include "runtime/registry/function_key.h"

namespace forklet::registry {
namespace {

using nlohmann::json;

constexpr const char* kStateFile = "function.json";
constexpr const char* kTmpPrefix = ".tmp";
constexpr size_t kMaxStateFile = 1 << 20;

Error NotFound(const std::string& name) {
  return Error{"ResourceNotFoundException", 0, "Function not found: " + FunctionArn(name)};
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

Error PreconditionFailed() {
  return Error{"PreconditionFailedException", 0,
               "The Revision Id provided does not match the latest Revision Id. Call the "
               "GetFunction/GetAlias API to retrieve the latest Revision Id"};
}

// 64 bits from the kernel's CSPRNG: a function recreated after any number of restarts gets an
// identity of its own (a generator seeded with 32 bits per start repeats across starts).
std::string NewFunctionId() {
  uint64_t v = 0;
  for (size_t got = 0; got < sizeof(v);) {
    ssize_t r = getrandom(reinterpret_cast<char*>(&v) + got, sizeof(v) - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      perror("forkletd: getrandom for a function id");
      abort();
    }
    got += static_cast<size_t>(r);
  }
  char buf[20];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A function id becomes a path component: lower-case hex only.
bool ValidFunctionId(const std::string& id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

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

// Unpacks zip into code_dir and stores the zip at zip_path.
Status StageCode(std::string_view zip, const std::string& code_dir, const std::string& zip_path,
                 const ArchiveLimits& limits) {
  if (auto s = MakeDir(code_dir, 0755); !s) return s;
  auto unpacked = UnpackZip(zip, code_dir, limits);
  if (!unpacked) return unpacked.error();
  return WriteNewFile(zip_path, zip, 0644);
}

}  // namespace

struct Registry::Impl {
  // A published version: an immutable copy of $LATEST's configuration, sharing its code tree.
  struct VersionEntry {
    Deployed deployed;
    uint64_t code_revision = 0;
    bool legacy_layout = false;
    uint64_t from_revision = 0;  // $LATEST's revision it was published from
  };
  struct Entry {
    Deployed deployed;
    uint64_t code_revision = 0;
    bool legacy_layout = false;  // code under functions/<name>/code/<rev> (older state)
    std::map<uint64_t, VersionEntry> versions;
    uint64_t last_version = 0;  // numbers are never reused, even after a delete
    std::map<std::string, Alias> aliases;
  };

  std::string state_dir;
  std::unique_ptr<LayerStore> layers;
  std::string functions_dir;
  std::string code_root;  // <state>/code
  UniqueFd lock_fd;  // flock on <state>/registry.lock: one daemon per state dir
  ArchiveLimits limits;

  std::mutex write_mu;     // serializes changes on disk; held across a commit, never while unpacking
  mutable std::mutex mu;   // guards entries; held only briefly
  std::map<std::string, Entry> entries;

  std::string FunctionDir(const std::string& name) const { return functions_dir + "/" + name; }
  std::string CodeDir(const FunctionConfig& c, uint64_t rev, bool legacy) const {
    if (legacy) return FunctionDir(c.name) + "/code/" + std::to_string(rev);
    return code_root + "/" + c.function_id + "-" + std::to_string(rev);
  }

  // The merged layers of a function's revision (FunctionConfig::opt_revision).
  std::string OptDir(const FunctionConfig& c) const {
    return code_root + "/" + c.function_id + "-" + std::to_string(c.opt_revision) + "-opt";
  }
  // Checks next->layers against the layer store (live versions of the function's account), sets
  // their sizes, and merges them into a new, durable /opt tree named for next->revision; null
  // when there are none. The tree is retired unless the caller publishes it.
  Result<std::shared_ptr<const CodeTree>> MakeOptTree(FunctionConfig* next) const;

  // An entry with a new code tree (never for a tree another entry holds: two owners would
  // each remove it).
  Entry MakeEntry(const FunctionConfig& config, uint64_t code_revision, bool legacy) const {
    Entry e;
    std::string dir = CodeDir(config, code_revision, legacy);
    e.deployed.code = std::make_shared<CodeTree>(dir, dir + ".zip");
    e.code_revision = code_revision;
    e.legacy_layout = legacy;
    return WithConfig(std::move(e), config);
  }
  static Entry WithConfig(Entry e, const FunctionConfig& config) {
    e.deployed.config = config;
    e.deployed.code_dir = e.deployed.code->dir;
    e.deployed.zip_path = e.deployed.code->zip;
    return e;
  }

  std::optional<Entry> Find(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = entries.find(name);
    if (it == entries.end()) return std::nullopt;
    return it->second;
  }

  // Replaces (or with nullopt erases) the entry; a code tree neither $LATEST nor a version names
  // any more is retired, and goes when its last holder lets go (never under mu).
  void Publish(const std::string& name, std::optional<Entry> e) {
    std::set<const CodeTree*> next_trees;  // $LATEST's and its versions', code and /opt
    if (e) {
      next_trees.insert(e->deployed.code.get());
      next_trees.insert(e->deployed.opt.get());
      for (const auto& [n, v] : e->versions) {
        next_trees.insert(v.deployed.code.get());
        next_trees.insert(v.deployed.opt.get());
      }
    }
    auto retire = [&](const std::shared_ptr<const CodeTree>& t) {
      if (t && !next_trees.count(t.get())) t->Retire();
    };
    std::optional<Entry> old;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = entries.find(name);
      if (it != entries.end()) old = std::move(it->second);
      if (e) entries[name] = std::move(*e);
      else if (it != entries.end()) entries.erase(it);
    }
    if (!old) return;
    retire(old->deployed.code);
    retire(old->deployed.opt);
    for (const auto& [n, v] : old->versions) {
      retire(v.deployed.code);
      retire(v.deployed.opt);
    }
  }

  Result<Entry> Load(const std::string& name);
  // The whole record of a function: $LATEST's state (config with its code tree), and the
  // versions and aliases of `extras`.
  static std::string Record(const FunctionConfig& config, uint64_t code_revision, bool legacy,
                            const Entry& extras);
  static Status LoadVersions(const json& j, Entry* e, const Impl& impl);
  void RemoveLegacyCodeExcept(const std::string& name, const std::set<uint64_t>& keep);
  void RemoveUnnamedCode();
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
  const bool legacy = !j.contains("code_layout");
  if (!legacy && !ValidFunctionId(config->function_id))
    return MakeError("load " + dir, "function.json has no valid function_id");
  // Older state has no identity; one made now is written with the next change.
  if (!ValidFunctionId(config->function_id)) config->function_id = NewFunctionId();
  Entry e = MakeEntry(config.value(), j["code_revision"].get<uint64_t>(), legacy);
  if (!IsDir(e.deployed.code_dir)) return MakeError("load " + dir, "missing " + e.deployed.code_dir);
  if (!IsFile(e.deployed.zip_path)) return MakeError("load " + dir, "missing " + e.deployed.zip_path);
  if (config->opt_revision != 0) {
    e.deployed.opt = std::make_shared<CodeTree>(OptDir(*config), "");
    if (!IsDir(e.deployed.opt->dir)) return MakeError("load " + dir, "missing " + e.deployed.opt->dir);
  }
  ::unlink((dir + "/" + kStateFile + ".tmp").c_str());
  if (auto s = LoadVersions(j, &e, *this); !s) return MakeError("load " + dir, s.error().ToString());
  // No instance survives a daemon restart, so only the current code (and the versions') is
  // still needed.
  std::set<uint64_t> keep;
  if (legacy) keep.insert(e.code_revision);
  for (const auto& [n, v] : e.versions)
    if (v.legacy_layout) keep.insert(v.code_revision);
  RemoveLegacyCodeExcept(name, keep);
  return e;
}

std::string Registry::Impl::Record(const FunctionConfig& config, uint64_t code_revision,
                                   bool legacy, const Entry& extras) {
  json j = ToStateJson(config);
  j["code_revision"] = code_revision;
  if (!legacy) j["code_layout"] = "shared";  // <state>/code/<function_id>-<rev>
  if (extras.last_version == 0 && extras.aliases.empty()) return j.dump(2) + "\n";
  json versions = json::array();
  for (const auto& [n, v] : extras.versions) {
    json r{{"config", ToStateJson(v.deployed.config)}, {"code_revision", v.code_revision},
           {"from_revision", v.from_revision}};
    if (!v.legacy_layout) r["code_layout"] = "shared";
    versions.push_back(std::move(r));
  }
  json aliases = json::array();
  for (const auto& [n, a] : extras.aliases)
    aliases.push_back({{"name", a.name}, {"function_version", a.function_version},
                       {"description", a.description}, {"revision_id", a.revision_id}});
  j["versions"] = std::move(versions);
  j["last_version"] = extras.last_version;
  j["aliases"] = std::move(aliases);
  return j.dump(2) + "\n";
}

// The versions and aliases of a record. A version's code tree is shared with $LATEST's or an
// earlier version's when they name the same one (one owner per tree); Publish retires a tree
// when no record names it any more.
Status Registry::Impl::LoadVersions(const json& j, Entry* e, const Impl& impl) {
  try {
    e->last_version = j.value("last_version", uint64_t{0});
    std::map<std::string, std::shared_ptr<const CodeTree>> trees{{e->deployed.code_dir, e->deployed.code}};
    if (e->deployed.opt) trees[e->deployed.opt->dir] = e->deployed.opt;
    for (const json& r : j.value("versions", json::array())) {
      auto config = FromStateJson(r.at("config"));
      if (!config) return config.error();
      if (config->name != e->deployed.config.name || config->version == kLatest)
        return MakeError("versions", "a version record names '" + config->name + ":" + config->version + "'");
      VersionEntry v;
      v.code_revision = r.at("code_revision").get<uint64_t>();
      v.legacy_layout = !r.contains("code_layout");
      v.from_revision = r.value("from_revision", uint64_t{0});
      const std::string dir = impl.CodeDir(*config, v.code_revision, v.legacy_layout);
      auto& tree = trees[dir];
      if (!tree) {
        if (!IsDir(dir)) return MakeError("versions", "missing " + dir);
        tree = std::make_shared<CodeTree>(dir, dir + ".zip");
      }
      v.deployed.code = tree;
      v.deployed.code_dir = tree->dir;
      v.deployed.zip_path = tree->zip;
      if (config->opt_revision != 0) {  // shared with $LATEST's or another version's
        const std::string opt = impl.OptDir(*config);
        auto& t = trees[opt];
        if (!t) {
          if (!IsDir(opt)) return MakeError("versions", "missing " + opt);
          t = std::make_shared<CodeTree>(opt, "");
        }
        v.deployed.opt = t;
      }
      v.deployed.config = std::move(config.value());
      const uint64_t n = std::stoull(v.deployed.config.version);
      e->last_version = std::max(e->last_version, n);
      e->versions.emplace(n, std::move(v));
    }
    for (const json& a : j.value("aliases", json::array()))
      e->aliases[a.at("name").get<std::string>()] =
          Alias{a.at("name").get<std::string>(), a.at("function_version").get<std::string>(),
                a.value("description", std::string()), a.value("revision_id", std::string())};
  } catch (const std::exception& ex) {
    return MakeError("versions", ex.what());
  }
  return {};
}

// Removes every code revision (directory and zip) below functions/<name>/code except those in
// keep.
void Registry::Impl::RemoveLegacyCodeExcept(const std::string& name, const std::set<uint64_t>& keep) {
  std::string code = FunctionDir(name) + "/code";
  if (!IsDir(code)) return;
  for (const std::string& n : ListDir(code)) {
    bool kept = false;
    for (uint64_t k : keep)
      kept = kept || n == std::to_string(k) || n == std::to_string(k) + ".zip";
    if (!kept) RemoveTree(code + "/" + n);
  }
  if (keep.empty()) ::rmdir(code.c_str());
}

// At Open: removes code trees no record names (a crash between publishing a tree and the record
// naming it, a revision superseded while instances ran it, staging debris).
void Registry::Impl::RemoveUnnamedCode() {
  std::set<std::string> named;
  auto name_tree = [&](const Deployed& d, bool legacy) {
    if (legacy) return;
    std::string base = d.code_dir.substr(code_root.size() + 1);
    named.insert(base);
    named.insert(base + ".zip");
    named.insert(base + ".erofs");  // its image, complete (built under another name, then renamed)
  };
  auto name_opt = [&](const Deployed& d) {
    if (!d.opt) return;
    std::string base = d.opt->dir.substr(code_root.size() + 1);
    named.insert(base);
    named.insert(base + ".erofs");
  };
  for (const auto& [n, e] : entries) {
    name_tree(e.deployed, e.legacy_layout);
    name_opt(e.deployed);
    for (const auto& [v, ve] : e.versions) {
      name_tree(ve.deployed, ve.legacy_layout);
      name_opt(ve.deployed);
    }
  }
  for (const std::string& n : ListDir(code_root))
    if (!named.count(n)) RemoveTree(code_root + "/" + n);
}

Result<std::shared_ptr<const CodeTree>> Registry::Impl::MakeOptTree(FunctionConfig* next) const {
  next->opt_revision = 0;
  if (next->layers.empty()) return std::shared_ptr<const CodeTree>();
  if (next->layers.size() > kMaxLayers)
    return Error{"InvalidParameterValueException", 0,
                 "Cannot reference more than " + std::to_string(kMaxLayers) + " layers."};
  std::vector<std::shared_ptr<const CodeTree>> contents;  // held: a delete cannot remove them now
  std::set<std::string> seen;
  for (LayerRef& ref : next->layers) {
    auto parsed = ParseLayerVersionArn(ref.arn);
    std::optional<LayerVersion> v;
    // Only the function's own account's layers (forklet has no AddLayerVersionPermission).
    if (parsed && AccountOf(parsed->key) == AccountOf(next->name))
      v = layers->Get(parsed->key, parsed->version);
    if (!v)
      return Error{"InvalidParameterValueException", 0,
                   "Layer version " + ref.arn.substr(0, 200) + " does not exist."};
    if (!seen.insert(parsed->key).second)
      return Error{"InvalidParameterValueException", 0,
                   "Two different versions of the same layer are not allowed: " + LayerArn(parsed->key)};
    ref.code_size = v->code_size;
    contents.push_back(v->content);
  }
  auto staging = Staging::Make(code_root);
  if (!staging) return staging.error();
  const std::string merged = staging->path() + "/opt";
  if (auto s = MergeLayers(contents, merged); !s) return s.error();
  if (auto s = SyncFilesystem(staging->path()); !s) return s.error();
  next->opt_revision = next->revision;
  auto tree = std::make_shared<const CodeTree>(OptDir(*next), "");
  RemoveTree(tree->dir);  // debris of a failed try
  if (::rename(merged.c_str(), tree->dir.c_str()) != 0) return StorageError("rename " + merged, errno);
  if (auto s = FsyncPath(code_root); !s) {
    tree->Retire();
    return s.error();
  }
  return tree;
}

LayerStore& Registry::Layers() { return *impl_->layers; }

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
  auto layers = LayerStore::Open(impl->state_dir, limits);
  if (!layers) return layers.error();
  impl->layers = std::move(layers.value());
  impl->functions_dir = impl->state_dir + "/functions";
  impl->code_root = impl->state_dir + "/code";
  impl->limits = limits;
  for (const std::string& d : {impl->functions_dir, impl->code_root}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return SysError("mkdir " + d);
    if (!IsDir(d)) return MakeError("open registry", d + " is not a directory");
    if (::access(d.c_str(), R_OK | W_OK | X_OK) != 0) return SysError("access " + d);
  }

  for (const std::string& n : ListDir(impl->functions_dir)) {
    std::string path = impl->functions_dir + "/" + n;
    if (StartsWith(n, kTmpPrefix)) {  // staging or trash of an interrupted change
      RemoveTree(path);
      continue;
    }
    // A function key: NAME, or ACCOUNT.NAME outside the default account (function_key.h).
    if (!IsDir(path) || !ValidAccountId(AccountOf(n)) || !ValidateName(NameOf(n))) {
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
  impl->RemoveUnnamedCode();
  return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}

namespace {

// A zip unpacked into <code_root>/.tmp-XXXXXX/{code,code.zip} and flushed; removed unless
// published.
struct StagedCode {
  Staging staging;
  std::string dir, zip;
};
Result<StagedCode> StageCodeTree(const std::string& code_root, std::string_view zip,
                                 const ArchiveLimits& limits) {
  auto staging = Staging::Make(code_root);
  if (!staging) return staging.error();
  StagedCode out{std::move(staging.value()), "", ""};
  out.dir = out.staging.path() + "/code";
  out.zip = out.staging.path() + "/code.zip";
  if (auto s = StageCode(zip, out.dir, out.zip, limits); !s) return s.error();
  if (auto s = SyncFilesystem(out.staging.path()); !s) return s.error();
  return out;
}

// Moves a staged tree to its published name; a stray one of that name is debris of a failed try.
Status PublishCodeTree(StagedCode& staged, const CodeTree& tree) {
  RemoveTree(tree.dir);
  RemoveTree(tree.zip);
  if (::rename(staged.dir.c_str(), tree.dir.c_str()) != 0)
    return StorageError("rename " + staged.dir, errno);
  if (::rename(staged.zip.c_str(), tree.zip.c_str()) != 0) {
    int e = errno;
    RemoveTree(tree.dir);
    return StorageError("rename " + staged.zip, e);
  }
  // Durable before a record names it: after a crash a record never names a missing tree.
  std::string root = tree.dir.substr(0, tree.dir.rfind('/'));
  if (auto s = FsyncPath(root); !s) {
    RemoveTree(tree.dir);
    RemoveTree(tree.zip);
    return s;
  }
  return {};
}

bool RevisionMismatch(const ChangeOptions& options, const FunctionConfig& current) {
  return !options.expected_revision_id.empty() && options.expected_revision_id != RevisionId(current);
}

}  // namespace

Result<Deployed> Registry::Create(FunctionConfig config, std::string_view zip) {
  if (auto s = ValidateConfig(config); !s) return s.error();
  const std::string name = config.name;
  auto conflict = [&] {
    return Error{"ResourceConflictException", 0, "Function already exist: " + name};
  };
  if (impl_->Find(name)) return conflict();

  config.function_id = NewFunctionId();
  config.code_sha256 = Sha256Base64(zip);
  config.code_size = zip.size();
  config.revision = 1;
  config.last_modified = NowLastModified();
  const uint64_t code_rev = config.revision;

  auto code = StageCodeTree(impl_->code_root, zip, impl_->limits);
  if (!code) return code.error();
  auto opt = impl_->MakeOptTree(&config);
  if (!opt) return opt.error();
  struct RetireUnlessPublished {  // the /opt tree, until a record names it
    std::shared_ptr<const CodeTree> tree;
    ~RetireUnlessPublished() {
      if (tree) tree->Retire();
    }
  } opt_guard{*opt};
  // The record is built aside and appears with one rename, after the code tree it names.
  auto staging = Staging::Make(impl_->functions_dir);
  if (!staging) return staging.error();
  const std::string& st = staging->path();
  if (auto s = WriteFileAtomic(st, kStateFile, Impl::Record(config, code_rev, false, Impl::Entry{})); !s) return s.error();

  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  if (impl_->Find(name)) return conflict();
  Impl::Entry e = impl_->MakeEntry(config, code_rev, false);
  e.deployed.opt = *opt;
  if (auto s = PublishCodeTree(code.value(), *e.deployed.code); !s) return s.error();
  auto undo = [&](Error err) -> Error {  // no record names the tree: it goes with e
    e.deployed.code->Retire();
    return err;
  };
  const std::string dir = impl_->FunctionDir(name);
  if (::rename(st.c_str(), dir.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) return undo(StorageError("rename " + st, errno));
    // A directory Open could not load (it logged why) is in the way; the new function replaces it.
    log::Warning("registry: replacing unloadable " + dir);
    std::string trash = impl_->functions_dir + "/" + kTmpPrefix + "-broken-" + name;
    RemoveTree(trash);
    if (::rename(dir.c_str(), trash.c_str()) != 0) return undo(StorageError("rename " + dir, errno));
    RemoveTree(trash);
    if (::rename(st.c_str(), dir.c_str()) != 0) return undo(StorageError("rename " + st, errno));
  }
  staging->Published();
  opt_guard.tree = nullptr;
  if (auto s = FsyncPath(impl_->functions_dir); !s)
    log::Warning("registry: " + s.error().ToString());
  impl_->Publish(name, e);
  return e.deployed;
}

Result<Deployed> Registry::UpdateCode(const std::string& name, std::string_view zip,
                                      const ChangeOptions& options) {
  auto before = impl_->Find(name);
  if (!before) return NotFound(name);
  if (RevisionMismatch(options, before->deployed.config)) return PreconditionFailed();

  auto code = StageCodeTree(impl_->code_root, zip, impl_->limits);
  if (!code) return code.error();
  const std::string sha = Sha256Base64(zip);

  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);  // may have been deleted or changed while unpacking
  if (!cur) return NotFound(name);
  if (RevisionMismatch(options, cur->deployed.config)) return PreconditionFailed();
  // DryRun: the code is valid (it unpacked); the staged tree goes with `code`.
  if (options.dry_run) return cur->deployed;
  FunctionConfig next = cur->deployed.config;
  next.code_sha256 = sha;
  next.code_size = zip.size();
  next.revision += 1;
  next.last_modified = NowLastModified();
  const uint64_t code_rev = next.revision;
  Impl::Entry e = impl_->MakeEntry(next, code_rev, false);
  e.deployed.opt = cur->deployed.opt;  // the layers stay
  e.versions = cur->versions;
  e.last_version = cur->last_version;
  e.aliases = cur->aliases;
  if (auto s = PublishCodeTree(code.value(), *e.deployed.code); !s) return s.error();
  // The switch: function.json names the new tree from here on.
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile, Impl::Record(next, code_rev, false, e));
      !s) {
    e.deployed.code->Retire();
    return s.error();
  }
  // The old tree is retired; invocations and instances holding it keep it until they end.
  impl_->Publish(name, e);
  return e.deployed;
}

Result<Deployed> Registry::UpdateConfiguration(const std::string& name, const json& changes,
                                               const ChangeOptions& options) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  if (RevisionMismatch(options, cur->deployed.config)) return PreconditionFailed();
  auto next = ApplyLambdaChanges(cur->deployed.config, changes);
  if (!next) return next.error();
  next->name = name;
  if (auto s = ValidateConfig(next.value()); !s) return s.error();
  if (options.dry_run) return Impl::WithConfig(*cur, next.value()).deployed;
  next->revision += 1;
  next->last_modified = NowLastModified();
  std::shared_ptr<const CodeTree> opt = cur->deployed.opt;
  const bool new_layers = next->layers != cur->deployed.config.layers;
  if (new_layers) {  // merged anew; the old tree stays while versions or instances hold it
    auto made = impl_->MakeOptTree(&next.value());
    if (!made) return made.error();
    opt = *made;
  }
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(next.value(), cur->code_revision, cur->legacy_layout, *cur));
      !s) {
    if (new_layers && opt) opt->Retire();
    return s.error();
  }
  Impl::Entry e = Impl::WithConfig(*cur, next.value());  // the same code tree
  e.deployed.opt = opt;
  impl_->Publish(name, e);
  return e.deployed;
}

Result<Deployed> Registry::SetReservedConcurrency(const std::string& name,
                                                  std::optional<uint32_t> limit) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  FunctionConfig next = cur->deployed.config;
  next.reserved_concurrency = limit;
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(next, cur->code_revision, cur->legacy_layout, *cur));
      !s)
    return s.error();
  Impl::Entry e = Impl::WithConfig(*cur, next);
  impl_->Publish(name, e);
  return e.deployed;
}

Status Registry::Delete(const std::string& name) {
  std::string trash;
  {
    std::lock_guard<std::mutex> wlock(impl_->write_mu);
    auto cur = impl_->Find(name);
    if (!cur) return NotFound(name);
    // Moved under a unique ".tmp" name first: the function vanishes at once, and a crash during
    // the slow recursive removal leaves only debris that Open removes. Its code tree (outside the
    // function's directory) goes when the invocations still running it end.
    auto staging = Staging::Make(impl_->functions_dir);
    if (!staging) return staging.error();
    const std::string dir = impl_->FunctionDir(name);
    if (::rename(dir.c_str(), (staging->path() + "/" + name).c_str()) != 0)
      return StorageError("rename " + dir, errno);
    if (auto s = FsyncPath(impl_->functions_dir); !s)
      log::Warning("registry: " + s.error().ToString());
    impl_->Publish(name, std::nullopt);
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

namespace {

bool AllDigits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

Error VersionNotFound(const std::string& name, const std::string& qualifier) {
  return Error{"ResourceNotFoundException", 0, "Function not found: " + QualifiedArn(name, qualifier)};
}

std::string NewAliasRevisionId() {
  std::string h = NewFunctionId() + NewFunctionId();
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

Status ValidateAliasName(const std::string& alias) {
  bool ok = !alias.empty() && alias.size() <= 128 && !AllDigits(alias);
  for (char c : alias)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_');
  if (ok) return {};
  return Error{"InvalidParameterValueException", 0,
               "1 validation error detected: Value '" + alias.substr(0, 140) +
                   "' at 'name' failed to satisfy constraint: Member must satisfy regular "
                   "expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) (1 to 128 characters)"};
}

}  // namespace

Result<Deployed> Registry::PublishVersion(const std::string& name, const std::string& description,
                                          const std::string& expected_code_sha256,
                                          const ChangeOptions& options) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  const FunctionConfig& latest = cur->deployed.config;
  if (RevisionMismatch(options, latest)) return PreconditionFailed();
  if (!expected_code_sha256.empty() && expected_code_sha256 != latest.code_sha256)
    return Error{"InvalidParameterValueException", 0,
                 "CodeSHA256 (" + expected_code_sha256 +
                     ") is different from current CodeSHA256 in $LATEST (" + latest.code_sha256 +
                     "). Please try again with the CodeSHA256 in $LATEST."};
  // Nothing changed since the last version: Lambda publishes no new one and returns it.
  if (!cur->versions.empty() && cur->versions.rbegin()->second.from_revision == latest.revision)
    return cur->versions.rbegin()->second.deployed;
  Impl::VersionEntry v;
  v.deployed = cur->deployed;  // the same code tree, held as long as the version exists
  v.code_revision = cur->code_revision;
  v.legacy_layout = cur->legacy_layout;
  v.from_revision = latest.revision;
  const uint64_t n = cur->last_version + 1;
  FunctionConfig& vc = v.deployed.config;
  vc.version = std::to_string(n);
  vc.last_modified = NowLastModified();
  if (!description.empty()) vc.description = description;
  Impl::Entry next = *cur;
  next.versions[n] = v;
  next.last_version = n;
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(latest, cur->code_revision, cur->legacy_layout, next));
      !s)
    return s.error();
  impl_->Publish(name, std::move(next));
  return v.deployed;
}

std::optional<Deployed> Registry::Resolve(const std::string& name, const std::string& qualifier) const {
  auto e = impl_->Find(name);
  if (!e) return std::nullopt;
  std::string version = qualifier;
  if (auto a = e->aliases.find(qualifier); a != e->aliases.end()) version = a->second.function_version;
  if (version.empty() || version == kLatest) return e->deployed;
  if (!AllDigits(version) || version.size() > 10) return std::nullopt;
  auto v = e->versions.find(std::stoull(version));
  if (v == e->versions.end()) return std::nullopt;
  Deployed d = v->second.deployed;
  // Concurrency is the function's, whichever version runs.
  d.config.reserved_concurrency = e->deployed.config.reserved_concurrency;
  return d;
}

std::vector<Deployed> Registry::Versions(const std::string& name) const {
  std::vector<Deployed> out;
  auto e = impl_->Find(name);
  if (!e) return out;
  out.push_back(e->deployed);
  for (const auto& [n, v] : e->versions) out.push_back(v.deployed);
  return out;
}

Status Registry::DeleteVersion(const std::string& name, const std::string& version) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  if (!AllDigits(version) || version.size() > 10 || !cur->versions.count(std::stoull(version)))
    return VersionNotFound(name, version);
  std::string users;
  for (const auto& [n, a] : cur->aliases)
    if (a.function_version == version) users += (users.empty() ? "" : ", ") + n;
  if (!users.empty())
    return Error{"ResourceConflictException", 0,
                 "Unable to delete version because the following aliases reference it: [" +
                     users + "]"};
  Impl::Entry next = *cur;
  next.versions.erase(std::stoull(version));
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(cur->deployed.config, cur->code_revision,
                                            cur->legacy_layout, next));
      !s)
    return s.error();
  impl_->Publish(name, std::move(next));
  return {};
}

Result<Alias> Registry::PutAlias(const std::string& name, const Alias& alias, bool create,
                                 const ChangeOptions& options) {
  if (auto s = ValidateAliasName(alias.name); !s) return s.error();
  if (alias.description.size() > 256)
    return Error{"InvalidParameterValueException", 0, "Description must be at most 256 characters"};
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  const std::string arn = QualifiedArn(name, alias.name);
  auto existing = cur->aliases.find(alias.name);
  if (create && existing != cur->aliases.end())
    return Error{"ResourceConflictException", 0, "Alias already exists: " + arn};
  if (!create && existing == cur->aliases.end())
    return Error{"ResourceNotFoundException", 0, "Alias not found: " + arn};
  if (!create && !options.expected_revision_id.empty() &&
      options.expected_revision_id != existing->second.revision_id)
    return Error{"PreconditionFailedException", 0,
                 "The Revision Id provided does not match the latest Revision Id. Call the "
                 "GetFunction/GetAlias API to retrieve the latest Revision Id"};
  const std::string& v = alias.function_version;
  if (v != kLatest && (!AllDigits(v) || v.size() > 10 || !cur->versions.count(std::stoull(v))))
    return VersionNotFound(name, v);
  Impl::Entry next = *cur;
  Alias stored = alias;
  stored.revision_id = NewAliasRevisionId();
  next.aliases[alias.name] = stored;
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(cur->deployed.config, cur->code_revision,
                                            cur->legacy_layout, next));
      !s)
    return s.error();
  impl_->Publish(name, std::move(next));
  return stored;
}

Result<Alias> Registry::GetAlias(const std::string& name, const std::string& alias) const {
  auto e = impl_->Find(name);
  if (!e) return NotFound(name);
  auto a = e->aliases.find(alias);
  if (a == e->aliases.end())
    return Error{"ResourceNotFoundException", 0, "Alias not found: " + QualifiedArn(name, alias)};
  return a->second;
}

Result<std::vector<Alias>> Registry::ListAliases(const std::string& name) const {
  auto e = impl_->Find(name);
  if (!e) return NotFound(name);
  std::vector<Alias> out;
  for (const auto& [n, a] : e->aliases) out.push_back(a);
  return out;
}

Status Registry::DeleteAlias(const std::string& name, const std::string& alias) {
  std::lock_guard<std::mutex> wlock(impl_->write_mu);
  auto cur = impl_->Find(name);
  if (!cur) return NotFound(name);
  if (!cur->aliases.count(alias)) return {};  // Lambda: deleting a missing alias succeeds
  Impl::Entry next = *cur;
  next.aliases.erase(alias);
  if (auto s = WriteFileAtomic(impl_->FunctionDir(name), kStateFile,
                               Impl::Record(cur->deployed.config, cur->code_revision,
                                            cur->legacy_layout, next));
      !s)
    return s.error();
  impl_->Publish(name, std::move(next));
  return {};
}

}  // namespace forklet::registry
