// Versions and aliases: PublishVersion, ListVersionsByFunction and the alias operations.
#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"
#include "runtime/api/lambda_request.h"
#include "runtime/api/pagination.h"

namespace forklet::api {
namespace {

using nlohmann::json;

json AliasJson(const std::string& function, const registry::Alias& a) {
  return json{{"AliasArn", registry::QualifiedArn(function, a.name)},
              {"Name", a.name},
              {"FunctionVersion", a.function_version},
              {"Description", a.description},
              {"RevisionId", a.revision_id}};
}

// A string field of a body, or InvalidParameterValueException when present and not a string.
Result<std::optional<std::string>> StringField(const json& b, const char* field) {
  if (!b.contains(field) || b[field].is_null()) return std::optional<std::string>();
  if (!b[field].is_string())
    return Error{"InvalidParameterValueException", 0, std::string(field) + " must be a string"};
  return std::optional<std::string>(b[field].get<std::string>());
}

HttpResponse NoContent() {
  HttpResponse out;
  out.status = 204;
  return out;
}

}  // namespace

HttpResponse LambdaApi::Versions(const FunctionRef& ref, const HttpRequest& r) {
  if (!ref.qualifier.empty())
    return ApiError(400, "InvalidParameterValueException",
                    "Versions are listed and published for the unqualified function name");
  if (ref.foreign || !registry_->Get(ref.key)) return FromError(NotFound(ref));
  if (r.method == "GET") {  // ListVersionsByFunction
    std::vector<ListItem> items;
    for (const auto& v : registry_->Versions(ref.key))
      items.emplace_back(VersionListKey(v.config), VersionListJson(v.config));
    auto page = ListPage(r, items, "Versions");
    if (!page) return FromError(page.error());
    return Json(200, *page);
  }
  if (r.method != "POST")
    return ApiError(405, "UnknownOperationException", "method not allowed");
  auto body = ParseBody(r);  // PublishVersion
  if (!body) return FromError(body.error());
  auto options = ReadChangeOptions(*body, false);
  if (!options) return FromError(options.error());
  auto description = StringField(*body, "Description");
  if (!description) return FromError(description.error());
  auto sha = StringField(*body, "CodeSha256");
  if (!sha) return FromError(sha.error());
  auto published = registry_->PublishVersion(ref.key, description->value_or(""),
                                             sha->value_or(""), *options);
  if (!published) return FromError(published.error());
  return Json(201, registry::ToLambdaJson(published->config));
}

HttpResponse LambdaApi::Aliases(const FunctionRef& ref, const std::string& alias,
                                const HttpRequest& r) {
  if (!ref.qualifier.empty())
    return ApiError(400, "InvalidParameterValueException",
                    "Aliases belong to the unqualified function name");
  if (ref.foreign || !registry_->Get(ref.key)) return FromError(NotFound(ref));
  if (alias.empty()) {
    if (r.method == "GET") {  // ListAliases, optionally of one FunctionVersion
      auto aliases = registry_->ListAliases(ref.key);
      if (!aliases) return FromError(aliases.error());
      auto only = r.query.find("FunctionVersion");
      std::vector<ListItem> items;
      for (const auto& a : *aliases)
        if (only == r.query.end() || only->second == a.function_version)
          items.emplace_back(a.name, AliasJson(ref.key, a));
      auto page = ListPage(r, items, "Aliases");
      if (!page) return FromError(page.error());
      return Json(200, *page);
    }
    if (r.method != "POST") return ApiError(405, "UnknownOperationException", "method not allowed");
  }
  if (r.method == "GET") {
    auto a = registry_->GetAlias(ref.key, alias);
    if (!a) return FromError(a.error());
    return Json(200, AliasJson(ref.key, *a));
  }
  if (r.method == "DELETE") {
    if (auto s = registry_->DeleteAlias(ref.key, alias); !s) return FromError(s.error());
    return NoContent();
  }
  if ((r.method != "POST" || !alias.empty()) && (r.method != "PUT" || alias.empty()))
    return ApiError(405, "UnknownOperationException", "method not allowed");
  auto body = ParseBody(r);  // CreateAlias (POST) or UpdateAlias (PUT)
  if (!body) return FromError(body.error());
  if (body->contains("RoutingConfig") && !(*body)["RoutingConfig"].is_null() &&
      !(*body)["RoutingConfig"].empty() &&
      !(*body)["RoutingConfig"].value("AdditionalVersionWeights", json::object()).empty())
    return ApiError(400, "InvalidParameterValueException",
                    "RoutingConfig (weighted aliases) is not supported by forklet: an alias "
                    "names one version");
  auto options = ReadChangeOptions(*body, false);
  if (!options) return FromError(options.error());
  auto name = StringField(*body, "Name");
  auto version = StringField(*body, "FunctionVersion");
  auto description = StringField(*body, "Description");
  for (const auto* f : {&name, &version, &description})
    if (!*f) return FromError(f->error());
  registry::Alias a;
  const bool create = r.method == "POST";
  if (create) {
    if (!name->has_value() || !version->has_value())
      return ApiError(400, "InvalidParameterValueException",
                      "CreateAlias needs Name and FunctionVersion");
    a.name = **name;
  } else {
    auto existing = registry_->GetAlias(ref.key, alias);
    if (!existing) return FromError(existing.error());
    a = *existing;
  }
  if (version->has_value()) a.function_version = **version;
  if (description->has_value()) a.description = **description;
  auto stored = registry_->PutAlias(ref.key, a, create, *options);
  if (!stored) return FromError(stored.error());
  return Json(create ? 201 : 200, AliasJson(ref.key, *stored));
}

}  // namespace forklet::api
