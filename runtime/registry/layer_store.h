// Lambda layers: published layer versions (a zip unpacked once, immutable), persisted in the
// state dir, and the merge of a function's layers into the one tree its instances see at /opt.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/registry/code_archive.h"
#include "runtime/registry/code_tree.h"
#include "sandbox/error.h"

namespace forklet::registry {

// One published version of a layer.
struct LayerVersion {
  std::string key;  // the layer's key: NAME, or ACCOUNT.NAME outside the default account
  uint64_t version = 0;
  std::string description;
  std::string license_info;
  std::vector<std::string> compatible_runtimes;
  std::vector<std::string> compatible_architectures;
  std::string created_date;  // ISO-8601
  std::string code_sha256;   // base64, as Lambda reports it
  uint64_t code_size = 0;
  std::shared_ptr<const CodeTree> content;  // the unpacked zip and the zip itself
};

// arn:aws:lambda:REGION:ACCOUNT:layer:NAME and that with ":VERSION".
std::string LayerArn(const std::string& key);
std::string LayerVersionArn(const std::string& key, uint64_t version);
// A layer version ARN back to its layer key and version; nullopt when it is not one.
struct LayerVersionRef {
  std::string key;
  uint64_t version = 0;
};
std::optional<LayerVersionRef> ParseLayerVersionArn(const std::string& arn);
// A layer name: [A-Za-z0-9_-]{1,64} (Lambda's pattern without ARNs); its message is Lambda's.
Status ValidateLayerName(const std::string& name);

// Lambda's LayerVersion JSON (GetLayerVersion, PublishLayerVersion's answer, ListLayerVersions'
// items), and the layer's entry in ListLayers (its latest version).
nlohmann::json LayerVersionJson(const LayerVersion& v, bool with_content);

// Layout: <state>/layers/<key>/layer.json (every live version's metadata and the last number
// given) and <state>/layers/<key>/<N> (unpacked) with <N>.zip. A version's files are published
// before the record naming it; the record is replaced atomically; Open removes files no record
// names. Deleting a version removes it from the record at once (no list or new reference sees
// it); its files go when the last holder (a merge in progress) lets go. Functions that use it
// keep it: their /opt tree holds hard links to its files (MergeLayers), not the files' names.
// Thread-safe.
class LayerStore {
 public:
  // Under state_dir (which exists; its registry.lock is the caller's).
  static Result<std::unique_ptr<LayerStore>> Open(const std::string& state_dir, ArchiveLimits limits);

  // v's key, description, license and compatible lists are taken; the rest is set here.
  // Numbers are 1, 2, ... per layer and never reused, even after the layer's versions are all
  // deleted.
  Result<LayerVersion> Publish(LayerVersion v, std::string_view zip);
  std::optional<LayerVersion> Get(const std::string& key, uint64_t version) const;
  // Each layer's versions, newest first; layers by key.
  std::map<std::string, std::vector<LayerVersion>> List() const;
  // Absent is fine (Lambda's DeleteLayerVersion succeeds then).
  Status Delete(const std::string& key, uint64_t version);

 private:
  struct Layer {
    uint64_t last_version = 0;
    std::map<uint64_t, LayerVersion> versions;
  };
  std::string LayerDir(const std::string& key) const { return root_ + "/" + key; }
  Status WriteRecord(const std::string& key, const Layer& layer) const;
  Result<Layer> Load(const std::string& key);

  std::string root_;  // <state>/layers
  ArchiveLimits limits_;
  std::mutex write_mu_;  // serializes changes on disk
  mutable std::mutex mu_;
  std::map<std::string, Layer> layers_;
};

// Merges the layers' trees into dest (which must not exist) in order, later layers over earlier
// ones (a file of a later layer replaces the same path of an earlier one, as Lambda extracts them
// into /opt one after the other). Files are hard links to the layers' (copies where a link is not
// possible), so a deleted layer version stays whole in every function that uses it.
Status MergeLayers(const std::vector<std::shared_ptr<const CodeTree>>& layers, const std::string& dest);

}  // namespace forklet::registry
