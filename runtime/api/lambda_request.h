// What the Lambda API handlers share: request bodies and options read from them, registry errors
// as Lambda's error responses, and the JSON of versions in listings.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/function_ref.h"
#include "runtime/api/http_server.h"
#include "runtime/registry/registry.h"
#include "sandbox/error.h"

namespace forklet::api {

// Registry errors carry the Lambda exception name in op: its status and error shape.
HttpResponse FromError(const Error& e);
// 404 ResourceNotFoundException naming the function (and qualifier) as the request did.
Error NotFound(const FunctionRef& ref);
// The body as a JSON object ({} when empty), or InvalidRequestContentException.
Result<nlohmann::json> ParseBody(const HttpRequest& r);
// Fields of an update that say how to change, not what: RevisionId and DryRun.
Result<registry::ChangeOptions> ReadChangeOptions(const nlohmann::json& b, bool dry_run_allowed);

// A version in ListVersionsByFunction and ListFunctions?FunctionVersion=ALL: its configuration
// with a qualified ARN ($LATEST's too, as Lambda lists it), and its sort key in such a listing
// (by name, $LATEST first, then by number).
nlohmann::json VersionListJson(const registry::FunctionConfig& config);
std::string VersionListKey(const registry::FunctionConfig& config);

}  // namespace forklet::api
