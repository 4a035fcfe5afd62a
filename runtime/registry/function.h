// A function's configuration as the Lambda API knows it, and its validation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/error.h"

namespace forklet::registry {

// A layer version a function uses (Lambda's Layers: [{Arn, CodeSize}]).
struct LayerRef {
  std::string arn;         // arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
  uint64_t code_size = 0;  // of the layer version's zip, set by the registry
  bool operator==(const LayerRef& o) const { return arn == o.arn; }
};
inline constexpr size_t kMaxLayers = 5;

struct FunctionConfig {
  std::string name;          // the key: [A-Za-z0-9_-]{1,64}, "ACCOUNT." before it outside the
                             // default account (function_key.h)
  std::string runtime;       // "python3" family: "python3", "python3.11", "python3.x" accepted
  std::string handler;       // "module.function", module may be a dotted/slashed path
  uint32_t memory_mb = 128;  // 128..10240
  uint32_t timeout_s = 3;    // 1..900
  uint32_t ephemeral_storage_mb = 512;  // EphemeralStorage.Size, 512..10240: the size of /tmp
  std::map<std::string, std::string> environment;
  std::string description;
  std::string role;          // accepted and ignored
  std::vector<LayerRef> layers;  // in order, later over earlier at /opt (layer_store.h)
  // Set by the registry:
  std::string function_id;   // random per Create: a re-created name is another function
  std::optional<uint32_t> reserved_concurrency;  // PutFunctionConcurrency, 0..1000
  // Code, set by the registry:
  std::string code_sha256;   // base64 of the SHA-256 of the zip, as Lambda reports it
  uint64_t code_size = 0;    // bytes of the zip
  uint64_t opt_revision = 0; // which merged /opt tree holds its layers; 0: none
  uint64_t revision = 0;     // increases on every code or configuration change
  std::string last_modified; // ISO-8601, e.g. 2026-11-23T12:00:00.000+0000
  // Which version this is: "$LATEST" (the function itself, changeable) or a published,
  // immutable one: "1", "2", ...
  std::string version = "$LATEST";
};

inline constexpr const char* kLatest = "$LATEST";
// What keeps the instances, zygotes and pools of one version apart: the function's key for
// $LATEST, "KEY:VERSION" for a published version ($LATEST and a version never share an
// instance); a tenant's version 3 is "ACCOUNT.NAME:3".
std::string VersionKey(const FunctionConfig& config);
// The ARN of a function key, or of one of its versions or aliases (qualifier empty:
// unqualified): FunctionArn(key) and ":QUALIFIER".
std::string QualifiedArn(const std::string& key, const std::string& qualifier);

// Now in Lambda's LastModified / CreatedDate form: 2026-11-23T12:00:00.000+0000 (UTC).
std::string NowLastModified();

// The runner family of a runtime name ("python3.11" -> "python3"); empty when unknown.
std::string RuntimeFamily(const std::string& runtime);

// The environment variable that picks how a python3 runner calls the handler, and its values:
// "lambda" handler(event, context), the default; "openwhisk" main(params) -> dict; "stdin" main()
// reading the event from sys.stdin and writing the response to sys.stdout.
inline constexpr const char* kConventionVariable = "FORKLET_HANDLER_CONVENTION";
inline constexpr const char* kDefaultConvention = "lambda";
// The convention of a function (its variable's value, or the default); valid after ValidateConfig.
std::string HandlerConvention(const FunctionConfig& config);

// Field checks; the message names the field and the allowed range, as Lambda's
// InvalidParameterValueException does.
Status ValidateName(const std::string& name);
Status ValidateConfig(const FunctionConfig& config);

// Applies the fields present in an UpdateFunctionConfiguration body (Handler, Runtime, MemorySize,
// Timeout, EphemeralStorage.Size, Environment.Variables, Description, Role, Layers; others are
// ignored) to a copy of base. Layers are taken as ARNs (at most 5); the registry checks that they
// exist.
// Checks JSON types and integer ranges only; call ValidateConfig on the result.
Result<FunctionConfig> ApplyLambdaChanges(const FunctionConfig& base, const nlohmann::json& changes);

// Fields of CreateFunction / UpdateFunctionConfiguration / UpdateFunctionCode that Lambda has and
// forklet cannot apply (Architectures other than x86_64, VpcConfig with subnets, Publish,
// KMSKeyArn, ...): refused with InvalidParameterValueException naming the field, never ignored.
Status CheckUnsupportedFields(const nlohmann::json& body);
Status CheckUnsupportedCodeFields(const nlohmann::json& body);

// Lambda's FunctionConfiguration JSON (FunctionName, FunctionArn, Runtime, Handler, MemorySize,
// Timeout, CodeSha256, CodeSize, LastModified, Version "$LATEST", State "Active", Environment...).
nlohmann::json ToLambdaJson(const FunctionConfig& config);
// The ARN of a function key (function_key.h): arn:aws:lambda:REGION:ACCOUNT:function:NAME. The
// one place ARNs are built.
std::string FunctionArn(const std::string& key);
// The default account id (function_key.h's kDefaultAccount) and the region in forklet's ARNs.
inline constexpr const char* kAccountId = "000000000000";
inline constexpr const char* kRegion = "us-east-1";
// Lambda's opaque RevisionId: changes with every code or configuration change (and across a
// delete and re-create of a name).
std::string RevisionId(const FunctionConfig& config);

// Persistence form (all fields) and back.
nlohmann::json ToStateJson(const FunctionConfig& config);
Result<FunctionConfig> FromStateJson(const nlohmann::json& j);

}  // namespace forklet::registry
