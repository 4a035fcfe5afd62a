// Layers: PublishLayerVersion, ListLayers, ListLayerVersions, GetLayerVersion(ByArn) and
// DeleteLayerVersion, under Lambda's /2018-10-31/layers.
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"
#include "runtime/api/lambda_request.h"
#include "runtime/api/pagination.h"
#include "runtime/api/upload_body.h"
#include "runtime/registry/function_key.h"

namespace forklet::api {
namespace {

using nlohmann::json;

constexpr const char* kLayersPrefix = "/2018-10-31/layers";

Error LayerNotFound() {
  return Error{"ResourceNotFoundException", 0, "The resource you requested does not exist."};
}

// The layer a path names: NAME (of the caller's account) or its ARN
// (arn:aws:lambda:REGION:ACCOUNT:layer:NAME). Another account's is not found.
Result<std::string> LayerKey(const std::string& id, const HttpRequest& r) {
  const std::string account = r.account.empty() ? registry::kDefaultAccount : r.account;
  std::string name = id;
  std::string owner = account;
  if (id.rfind("arn:", 0) == 0) {
    auto parsed = registry::ParseLayerVersionArn(id + ":1");
    if (!parsed) return registry::ValidateLayerName(id).error();
    owner = registry::AccountOf(parsed->key);
    name = registry::NameOf(parsed->key);
    if (!r.account.empty() && owner != r.account) return LayerNotFound();
  }
  if (auto s = registry::ValidateLayerName(name); !s) return s.error();
  return registry::FunctionKey(owner, name);
}

Result<std::vector<std::string>> StringList(const json& b, const char* field, size_t max) {
  std::vector<std::string> out;
  if (!b.contains(field) || b[field].is_null()) return out;
  if (!b[field].is_array() || b[field].size() > max)
    return Error{"InvalidParameterValueException", 0,
                 std::string(field) + " must be a list of at most " + std::to_string(max) + " strings"};
  for (const json& v : b[field]) {
    if (!v.is_string())
      return Error{"InvalidParameterValueException", 0, std::string(field) + " must be a list of strings"};
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> StringOf(const json& b, const char* field) {
  if (!b.contains(field) || b[field].is_null()) return std::string();
  if (!b[field].is_string())
    return Error{"InvalidParameterValueException", 0, std::string(field) + " must be a string"};
  return b[field].get<std::string>();
}

// Newest first in a listing: the sort key goes down as the version goes up.
std::string NewestFirstKey(uint64_t version) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(~version));
  return buf;
}

bool Compatible(const registry::LayerVersion& v, const HttpRequest& r) {
  for (const char* field : {"CompatibleRuntime", "CompatibleArchitecture"}) {
    auto q = r.query.find(field);
    if (q == r.query.end()) continue;
    const auto& list = std::string(field) == "CompatibleRuntime" ? v.compatible_runtimes
                                                                 : v.compatible_architectures;
    if (std::find(list.begin(), list.end(), q->second) == list.end()) return false;
  }
  return true;
}

HttpResponse NoContent() {
  HttpResponse out;
  out.status = 204;
  return out;
}

}  // namespace

HttpResponse LambdaApi::Layers(const HttpRequest& r) {
  registry::LayerStore& store = registry_->Layers();
  std::string rest = r.path.substr(strlen(kLayersPrefix));
  const bool own_only = !r.account.empty();  // a tenant sees its own layers; the operator all
  if (rest.empty() || rest == "/") {
    if (r.method != "GET") return ApiError(405, "UnknownOperationException", "method not allowed");
    auto find = r.query.find("find");
    if (find != r.query.end() && find->second == "LayerVersion") {  // GetLayerVersionByArn
      auto arn = r.query.find("Arn");
      auto parsed = arn == r.query.end() ? std::nullopt : registry::ParseLayerVersionArn(arn->second);
      if (!parsed)
        return ApiError(400, "InvalidParameterValueException",
                        "Arn must be a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)");
      auto v = store.Get(parsed->key, parsed->version);
      if (!v || (own_only && registry::AccountOf(parsed->key) != r.account)) return FromError(LayerNotFound());
      return Json(200, registry::LayerVersionJson(*v, true));
    }
    std::vector<ListItem> items;  // ListLayers: each layer with its latest (matching) version
    for (const auto& [key, versions] : store.List()) {
      if (own_only && registry::AccountOf(key) != r.account) continue;
      for (const auto& v : versions) {
        if (!Compatible(v, r)) continue;
        json latest = registry::LayerVersionJson(v, false);
        latest.erase("LayerArn");
        items.emplace_back(key, json{{"LayerName", registry::NameOf(key)},
                                     {"LayerArn", registry::LayerArn(key)},
                                     {"LatestMatchingVersion", std::move(latest)}});
        break;
      }
    }
    auto page = ListPage(r, items, "Layers");
    if (!page) return FromError(page.error());
    return Json(200, *page);
  }
  // /NAME/versions[/N]
  rest = rest.substr(1);
  auto slash = rest.find('/');
  const std::string id = rest.substr(0, slash);
  const std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
  auto key = LayerKey(id, r);
  if (!key) return FromError(key.error());
  if (sub == "/versions" || sub == "/versions/") {
    if (r.method == "GET") {  // ListLayerVersions
      std::vector<ListItem> items;
      auto all = store.List();
      if (auto it = all.find(*key); it != all.end())
        for (const auto& v : it->second)
          if (Compatible(v, r)) items.emplace_back(NewestFirstKey(v.version), registry::LayerVersionJson(v, false));
      auto page = ListPage(r, items, "LayerVersions");
      if (!page) return FromError(page.error());
      return Json(200, *page);
    }
    if (r.method != "POST") return ApiError(405, "UnknownOperationException", "method not allowed");
    // PublishLayerVersion; a large zip is not copied into a parsed document.
    auto split = SplitLargeUpload(r.body, {"Content", "ZipFile"});
    Result<json> body = split ? Result<json>(std::move(split->body)) : ParseBody(r);
    if (!body) return FromError(body.error());
    const json& b = *body;
    const json content = b.value("Content", json::object());
    for (const char* f : {"S3Bucket", "S3Key", "S3ObjectVersion"})
      if (content.is_object() && content.contains(f) && !content[f].is_null())
        return ApiError(400, "InvalidParameterValueException",
                        "forklet accepts layer content only as Content.ZipFile (S3 is not supported)");
    std::string_view text;
    if (split) text = split->zip;
    else if (content.is_object() && content.contains("ZipFile") && content["ZipFile"].is_string())
      text = content["ZipFile"].get_ref<const std::string&>();
    else
      return ApiError(400, "InvalidParameterValueException", "Content.ZipFile is required");
    auto zip = registry::Base64Decode(text);
    if (!zip) return ApiError(400, "InvalidParameterValueException", "Content.ZipFile is not valid base64");
    registry::LayerVersion v;
    v.key = *key;
    auto description = StringOf(b, "Description");
    auto license = StringOf(b, "LicenseInfo");
    auto runtimes = StringList(b, "CompatibleRuntimes", 15);
    auto archs = StringList(b, "CompatibleArchitectures", 2);
    if (!description) return FromError(description.error());
    if (!license) return FromError(license.error());
    if (!runtimes) return FromError(runtimes.error());
    if (!archs) return FromError(archs.error());
    v.description = *description;
    v.license_info = *license;
    v.compatible_runtimes = *runtimes;
    v.compatible_architectures = *archs;
    auto published = store.Publish(std::move(v), *zip);
    if (!published) return FromError(published.error());
    return Json(201, registry::LayerVersionJson(*published, true));
  }
  if (sub.rfind("/versions/", 0) == 0) {
    const std::string n = sub.substr(10);
    if (n.empty() || n.size() > 10 || n.find_first_not_of("0123456789") != std::string::npos)
      return ApiError(400, "InvalidParameterValueException",
                      "1 validation error detected: Value '" + n.substr(0, 20) +
                          "' at 'versionNumber' failed to satisfy constraint: Member must be a number");
    const uint64_t version = std::stoull(n);
    if (r.method == "GET") {  // GetLayerVersion
      auto v = store.Get(*key, version);
      if (!v) return FromError(LayerNotFound());
      return Json(200, registry::LayerVersionJson(*v, true));
    }
    if (r.method == "DELETE") {  // functions using it keep it (layer_store.h)
      if (auto s = store.Delete(*key, version); !s) return FromError(s.error());
      return NoContent();
    }
    return ApiError(405, "UnknownOperationException", "method not allowed");
  }
  return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + r.path);
}

}  // namespace forklet::api
