// Lambda layers, persisted in the state dir (runtime/registry/layer_store.h).
#include "runtime/registry/layer_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>

#include "runtime/log/log.h"
#include "runtime/registry/durable_fs.h"
#include "runtime/registry/function.h"
#include "runtime/registry/function_key.h"

namespace forklet::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRecord = "layer.json";
constexpr size_t kMaxRecord = 4 << 20;

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

json VersionRecord(const LayerVersion& v) {
  return json{{"version", v.version},
              {"description", v.description},
              {"license_info", v.license_info},
              {"compatible_runtimes", v.compatible_runtimes},
              {"compatible_architectures", v.compatible_architectures},
              {"created_date", v.created_date},
              {"code_sha256", v.code_sha256},
              {"code_size", v.code_size}};
}

}  // namespace

std::string LayerArn(const std::string& key) {
  auto [account, name] = SplitFunctionKey(key);
  return std::string("arn:aws:lambda:") + kRegion + ":" + account + ":layer:" + name;
}

std::string LayerVersionArn(const std::string& key, uint64_t version) {
  return LayerArn(key) + ":" + std::to_string(version);
}

std::optional<LayerVersionRef> ParseLayerVersionArn(const std::string& arn) {
  // arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = arn.find(':', start);
    parts.push_back(arn.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "layer")
    return std::nullopt;
  if (!ValidAccountId(parts[4]) || !ValidateLayerName(parts[6]) || !AllDigits(parts[7]))
    return std::nullopt;
  return LayerVersionRef{FunctionKey(parts[4], parts[6]), std::stoull(parts[7])};
}

Status ValidateLayerName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_');
  if (ok) return {};
  return Error{"InvalidParameterValueException", 0,
               "1 validation error detected: Value '" + name.substr(0, 100) +
                   "' at 'layerName' failed to satisfy constraint: Member must satisfy regular "
                   "expression pattern: [a-zA-Z0-9-_]+ (1 to 64 characters)"};
}

json LayerVersionJson(const LayerVersion& v, bool with_content) {
  json j{{"LayerArn", LayerArn(v.key)},
         {"LayerVersionArn", LayerVersionArn(v.key, v.version)},
         {"Description", v.description},
         {"CreatedDate", v.created_date},
         {"Version", v.version},
         {"CompatibleRuntimes", v.compatible_runtimes},
         {"CompatibleArchitectures", v.compatible_architectures}};
  if (!v.license_info.empty()) j["LicenseInfo"] = v.license_info;
  if (with_content)
    j["Content"] = {{"Location", "/forklet/v1/layers/" + v.key + "/" + std::to_string(v.version) + "/content.zip"},
                    {"CodeSha256", v.code_sha256},
                    {"CodeSize", v.code_size}};
  return j;
}

Result<std::unique_ptr<LayerStore>> LayerStore::Open(const std::string& state_dir,
                                                     ArchiveLimits limits) {
  auto store = std::unique_ptr<LayerStore>(new LayerStore());
  store->root_ = state_dir + "/layers";
  store->limits_ = limits;
  if (::mkdir(store->root_.c_str(), 0755) != 0 && errno != EEXIST)
    return SysError("mkdir " + store->root_);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store->root_, ec)) {
    const std::string n = e.path().filename();
    if (n.rfind(".tmp", 0) == 0) {  // staging of an interrupted publish
      RemoveTree(e.path());
      continue;
    }
    if (!e.is_directory() || !ValidAccountId(AccountOf(n)) || !ValidateLayerName(NameOf(n))) {
      log::Warning("layers: skipping " + e.path().string() + ": not a layer directory");
      continue;
    }
    auto layer = store->Load(n);
    if (!layer) {
      log::Warning("layers: skipping layer " + n + ": " + layer.error().ToString());
      continue;
    }
    store->layers_.emplace(n, std::move(*layer));
  }
  if (ec) return Error{"list " + store->root_, ec.value(), {}};
  return store;
}

Result<LayerStore::Layer> LayerStore::Load(const std::string& key) {
  const std::string dir = LayerDir(key);
  auto text = ReadSmallFile(dir + "/" + kRecord, kMaxRecord);
  if (!text) return text.error();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return MakeError("parse " + dir + "/" + kRecord, "not valid JSON");
  Layer layer;
  std::set<std::string> named{kRecord};
  try {
    layer.last_version = j.at("last_version").get<uint64_t>();
    for (const json& r : j.at("versions")) {
      LayerVersion v;
      v.key = key;
      v.version = r.at("version").get<uint64_t>();
      v.description = r.value("description", "");
      v.license_info = r.value("license_info", "");
      v.compatible_runtimes = r.value("compatible_runtimes", std::vector<std::string>{});
      v.compatible_architectures = r.value("compatible_architectures", std::vector<std::string>{});
      v.created_date = r.value("created_date", "");
      v.code_sha256 = r.at("code_sha256").get<std::string>();
      v.code_size = r.at("code_size").get<uint64_t>();
      const std::string n = std::to_string(v.version);
      v.content = std::make_shared<CodeTree>(dir + "/" + n, dir + "/" + n + ".zip");
      struct stat st;
      if (::lstat(v.content->dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return MakeError("load " + dir, "missing " + v.content->dir);
      named.insert(n);
      named.insert(n + ".zip");
      layer.last_version = std::max(layer.last_version, v.version);
      layer.versions.emplace(v.version, std::move(v));
    }
  } catch (const json::exception& e) {
    return MakeError("load " + dir, e.what());
  }
  // A deleted version's files, a publish that crashed before its record, a record's temp file.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (!named.count(e.path().filename())) RemoveTree(e.path());
  return layer;
}

Status LayerStore::WriteRecord(const std::string& key, const Layer& layer) const {
  json versions = json::array();
  for (const auto& [n, v] : layer.versions) versions.push_back(VersionRecord(v));
  json j{{"last_version", layer.last_version}, {"versions", std::move(versions)}};
  return WriteFileAtomic(LayerDir(key), kRecord, j.dump(2) + "\n");
}

Result<LayerVersion> LayerStore::Publish(LayerVersion v, std::string_view zip) {
  if (auto s = ValidateLayerName(NameOf(v.key)); !s) return s.error();
  if (v.description.size() > 256)
    return Error{"InvalidParameterValueException", 0, "Description must be at most 256 characters"};
  if (v.compatible_runtimes.size() > 15)
    return Error{"InvalidParameterValueException", 0, "CompatibleRuntimes has at most 15 items"};
  // Unpacked aside (<layers>/.tmp-XXXXXX/{code,code.zip}) and flushed, outside the write lock.
  std::string staging = root_ + "/.tmp-XXXXXX";
  if (::mkdtemp(staging.data()) == nullptr) return StorageError("mkdtemp " + staging, errno);
  struct Cleanup {
    std::string path;
    ~Cleanup() { RemoveTree(path); }
  } cleanup{staging};
  const std::string code = staging + "/code", code_zip = staging + "/code.zip";
  if (auto s = MakeDir(code, 0755); !s) return s.error();
  if (auto u = UnpackZip(zip, code, limits_); !u) return u.error();
  if (auto s = WriteNewFile(code_zip, zip, 0644); !s) return s.error();
  if (auto s = SyncFilesystem(staging); !s) return s.error();
  v.code_sha256 = Sha256Base64(zip);
  v.code_size = zip.size();
  v.created_date = NowLastModified();

  std::lock_guard wlock(write_mu_);
  Layer next;
  {
    std::lock_guard lock(mu_);
    if (auto it = layers_.find(v.key); it != layers_.end()) next = it->second;
  }
  v.version = next.last_version + 1;
  next.last_version = v.version;
  const std::string dir = LayerDir(v.key), n = std::to_string(v.version);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return StorageError("mkdir " + dir, errno);
  v.content = std::make_shared<CodeTree>(dir + "/" + n, dir + "/" + n + ".zip");
  RemoveTree(v.content->dir);  // debris of a publish that crashed before its record
  RemoveTree(v.content->zip);
  if (::rename(code.c_str(), v.content->dir.c_str()) != 0) return StorageError("rename " + code, errno);
  if (::rename(code_zip.c_str(), v.content->zip.c_str()) != 0) {
    int e = errno;
    v.content->Retire();
    return StorageError("rename " + code_zip, e);
  }
  if (auto s = FsyncPath(dir); !s) {
    v.content->Retire();
    return s.error();
  }
  next.versions[v.version] = v;
  if (auto s = WriteRecord(v.key, next); !s) {
    v.content->Retire();
    return s.error();
  }
  std::lock_guard lock(mu_);
  layers_[v.key] = std::move(next);
  return v;
}

std::optional<LayerVersion> LayerStore::Get(const std::string& key, uint64_t version) const {
  std::lock_guard lock(mu_);
  auto it = layers_.find(key);
  if (it == layers_.end()) return std::nullopt;
  auto v = it->second.versions.find(version);
  if (v == it->second.versions.end()) return std::nullopt;
  return v->second;
}

std::map<std::string, std::vector<LayerVersion>> LayerStore::List() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::vector<LayerVersion>> out;
  for (const auto& [key, layer] : layers_) {
    if (layer.versions.empty()) continue;
    auto& list = out[key];
    for (auto it = layer.versions.rbegin(); it != layer.versions.rend(); ++it) list.push_back(it->second);
  }
  return out;
}

Status LayerStore::Delete(const std::string& key, uint64_t version) {
  std::lock_guard wlock(write_mu_);
  Layer next;
  {
    std::lock_guard lock(mu_);
    auto it = layers_.find(key);
    if (it == layers_.end() || !it->second.versions.count(version)) return {};
    next = it->second;
  }
  auto gone = next.versions.at(version).content;
  next.versions.erase(version);
  if (auto s = WriteRecord(key, next); !s) return s;
  {
    std::lock_guard lock(mu_);
    layers_[key] = std::move(next);
  }
  gone->Retire();  // its files go with the last holder (functions hold links, not these names)
  return {};
}

Status MergeLayers(const std::vector<std::shared_ptr<const CodeTree>>& layers, const std::string& dest) {
  if (auto s = MakeDir(dest, 0755); !s) return s;
  std::error_code ec;
  for (const auto& layer : layers) {
    const fs::path root = layer->dir;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const fs::path rel = fs::relative(it->path(), root, ec);
      if (ec) break;
      const std::string dst = (fs::path(dest) / rel).string();
      struct stat st;
      const bool exists = ::lstat(dst.c_str(), &st) == 0;
      if (it->is_directory(ec)) {
        if (exists && S_ISDIR(st.st_mode)) continue;
        if (exists) RemoveTree(dst);  // a later layer's folder replaces an earlier one's file
        if (auto s = MakeDir(dst, 0755); !s) return s;
        continue;
      }
      if (exists) RemoveTree(dst);  // the later layer's file wins
      if (::link(it->path().c_str(), dst.c_str()) == 0) continue;
      if (errno != EXDEV && errno != EMLINK && errno != EPERM) return StorageError("link " + dst, errno);
      fs::copy_file(it->path(), dst, ec);
      if (ec) return StorageError("copy " + dst, ec.value());
    }
    if (ec) return StorageError("merge " + layer->dir, ec.value());
  }
  return {};
}

}  // namespace forklet::registry
