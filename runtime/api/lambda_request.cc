// Request bodies, change options and error responses shared by the Lambda API handlers.
#include "runtime/api/lambda_request.h"

#include <cstdio>

#include "runtime/api/lambda_api.h"

namespace forklet::api {

using nlohmann::json;

// Registry errors carry the Lambda exception name in op.
HttpResponse FromError(const Error& e) {
  int status = 400;
  if (e.op == "ResourceNotFoundException") status = 404;
  else if (e.op == "ResourceConflictException") status = 409;
  else if (e.op == "PreconditionFailedException") status = 412;
  else if (e.op == "RequestTooLargeException" || e.op == "RequestEntityTooLargeException") status = 413;
  else if (e.op == "CodeStorageExceededException" || e.op == "InvalidParameterValueException" ||
           e.op == "InvalidRequestContentException")
    status = 400;
  else
    return ApiError(500, "ServiceException", e.ToString());
  return ApiError(status, e.op, e.message.empty() ? e.ToString() : e.message);
}

Error NotFound(const FunctionRef& ref) {
  return Error{"ResourceNotFoundException", 0, "Function not found: " + ref.shown};
}

// Fields of an update that say how to change, not what: RevisionId and DryRun.
Result<registry::ChangeOptions> ReadChangeOptions(const json& b, bool dry_run_allowed) {
  registry::ChangeOptions o;
  if (b.contains("RevisionId") && !b["RevisionId"].is_null()) {
    if (!b["RevisionId"].is_string())
      return Error{"InvalidParameterValueException", 0, "RevisionId must be a string"};
    o.expected_revision_id = b["RevisionId"].get<std::string>();
  }
  if (dry_run_allowed && b.contains("DryRun") && !b["DryRun"].is_null()) {
    if (!b["DryRun"].is_boolean())
      return Error{"InvalidParameterValueException", 0, "DryRun must be a boolean"};
    o.dry_run = b["DryRun"].get<bool>();
  }
  return o;
}

Result<json> ParseBody(const HttpRequest& r) {
  auto j = json::parse(r.body.empty() ? std::string("{}") : r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error{"InvalidRequestContentException", 0, "Could not parse request body into json"};
  return j;
}

json VersionListJson(const registry::FunctionConfig& config) {
  json j = registry::ToLambdaJson(config);
  j["FunctionArn"] = registry::QualifiedArn(config.name, config.version);
  return j;
}

std::string VersionListKey(const registry::FunctionConfig& config) {
  char number[16];
  snprintf(number, sizeof(number), "%010llu",
           config.version == registry::kLatest ? 0ULL : std::stoull(config.version));
  return config.name + '\x01' + number;  // \x01 sorts below every character of a name
}

}  // namespace forklet::api
