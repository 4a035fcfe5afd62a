// Lambda REST API routes and forklet's extras.
#include "runtime/api/lambda_api.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "runtime/api/json_text.h"
#include "runtime/api/lambda_request.h"
#include "runtime/api/pagination.h"
#include "runtime/api/upload_body.h"
#include "runtime/core/report.h"
#include "runtime/log/log.h"
#include "runtime/registry/code_archive.h"
#include "runtime/registry/function_key.h"
#include "runtime/timeline/request_timeline.h"

namespace forklet::api {
namespace {

using nlohmann::json;

constexpr const char* kFunctionsPrefix = "/2015-03-31/functions";

std::string Iso8601Now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

Result<std::string> ZipFromCode(const json& code) {
  if (!code.is_object() || !code.contains("ZipFile") || !code["ZipFile"].is_string()) {
    if (code.is_object() && (code.contains("S3Bucket") || code.contains("ImageUri")))
      return Error{"InvalidParameterValueException", 0,
                   "forklet accepts code only as Code.ZipFile (S3 and images are not supported)"};
    return Error{"InvalidParameterValueException", 0, "Code.ZipFile is required"};
  }
  auto zip = registry::Base64Decode(code["ZipFile"].get<std::string>());
  if (!zip) return Error{"InvalidParameterValueException", 0, "Code.ZipFile is not valid base64"};
  return zip;
}

// The invocation's log as Lambda writes it, and the last 4 KB of it for X-Amz-Log-Result.
std::string ComposeLog(const std::string& request_id, const core::InvokeResult& r,
                       const registry::FunctionConfig& cfg) {
  std::string log = "START RequestId: " + request_id + " Version: " + cfg.version + "\n";
  log += r.log;
  if (!r.log.empty() && r.log.back() != '\n') log += '\n';
  if (r.outcome == core::Outcome::kTimeout)
    log += Iso8601Now() + " " + request_id + " " + core::TimeoutMessage(cfg.timeout_s) + "\n";
  log += "END RequestId: " + request_id + "\n";
  log += r.report_line + "\n";
  return log;
}

}  // namespace

HttpResponse Json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.headers["Content-Type"] = "application/json";
  // Messages may quote client bytes (a zip entry's name): invalid UTF-8 becomes U+FFFD, not a throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse EventRefused(const Error& e) {
  // Lambda's throttle shape; the Reason says which of forkletd's event bounds refused it.
  HttpResponse out = ApiError(429, "TooManyRequestsException", e.message);
  out.body = json{{"Type", "User"}, {"message", e.message},
                  {"Reason", e.err == ENOSPC ? "EventStorageLow" : "EventQueueFull"},
                  {"retryAfterSeconds", "1"}}.dump(-1, ' ', false, json::error_handler_t::replace);
  out.headers["Retry-After"] = "1";
  return out;
}

HttpResponse ApiError(int status, const std::string& type, const std::string& message) {
  HttpResponse r = Json(status, json{{"Type", status >= 500 ? "Service" : "User"},
                                     {"message", message}});
  r.headers["X-Amzn-ErrorType"] = type;
  return r;
}

HttpResponse OperatorOnly(const HttpRequest& r) {
  return ApiError(403, "AccessDeniedException",
                  "account " + r.account + " is not authorized to perform " + r.method + " " + r.path +
                      ": it is the operator's (the Unix socket, or an access key with \"operator\": true)");
}

LambdaApi::LambdaApi(registry::Registry* registry, core::Scheduler* scheduler,
                     core::InvocationObserver* observer, events::EventQueue* events,
                     events::InvokeConfigStore* configs, ApiLimits limits)
    : registry_(registry), scheduler_(scheduler), observer_(observer), events_(events),
      configs_(configs), limits_(limits) {}

void LambdaApi::Observe(const registry::FunctionConfig& cfg, const std::string& request_id,
                        core::InvokeResult& result) {
  if (result.end_epoch_ms == 0)
    result.end_epoch_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  if (observer_) observer_->OnInvocation(cfg.name, cfg.runtime, cfg.memory_mb, request_id, result);
}

Result<registry::Deployed> LambdaApi::Resolve(const FunctionRef& ref) {
  if (ref.foreign) return NotFound(ref);
  auto d = registry_->Resolve(ref.key, ref.qualifier);
  if (!d) return NotFound(ref);
  return *d;
}

Result<registry::Deployed> LambdaApi::ResolveLatest(const FunctionRef& ref, const char* operation) {
  auto d = Resolve(ref);  // a qualifier that names nothing: 404, as for any operation
  if (!d) return d.error();
  if (!ref.qualifier.empty() && ref.qualifier != registry::kLatest)
    return Error{"InvalidParameterValueException", 0,
                 std::string(operation) + " changes $LATEST only: published versions are "
                 "immutable and an alias is changed with UpdateAlias (name the function without "
                 "the qualifier '" + ref.qualifier + "')"};
  return d;
}

HttpResponse LambdaApi::Handle(const HttpRequest& r) {
  const std::string& p = r.path;
  auto q = r.query.find("Qualifier");
  const std::string query_qualifier = q == r.query.end() ? "" : q->second;
  // Concurrency lives under other API versions: /2017-10-31/ (put/delete), /2019-09-30/ (get).
  for (const char* version : {"/2017-10-31/functions/", "/2019-09-30/functions/"}) {
    if (p.rfind(version, 0) == 0) {
      std::string rest = p.substr(strlen(version));
      auto slash = rest.find('/');
      if (slash != std::string::npos && rest.substr(slash) == "/concurrency") {
        auto ref = ParseFunctionRef(rest.substr(0, slash), query_qualifier, r.account);
        if (!ref) return FromError(ref.error());
        return Concurrency(*ref, r);
      }
    }
  }
  if (p.rfind(kFunctionsPrefix, 0) != 0) return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + p);
  std::string rest = p.substr(strlen(kFunctionsPrefix));
  if (rest.empty() || rest == "/") {
    if (r.method == "POST") return CreateFunction(r);
    if (r.method == "GET") return ListFunctions(r);
    return ApiError(405, "UnknownOperationException", "method not allowed");
  }
  rest = rest.substr(1);
  auto slash = rest.find('/');
  auto parsed = ParseFunctionRef(rest.substr(0, slash), query_qualifier, r.account);
  if (!parsed) return FromError(parsed.error());
  const FunctionRef& ref = *parsed;
  std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
  if (sub.empty() || sub == "/") {
    if (r.method == "GET") return GetFunction(ref, false);
    if (r.method == "DELETE") return DeleteFunction(ref);
  } else if (sub == "/configuration") {
    if (r.method == "GET") return GetFunction(ref, true);
    if (r.method == "PUT") return UpdateConfiguration(ref, r);
  } else if (sub == "/code" && r.method == "PUT") {
    return UpdateCode(ref, r);
  } else if (sub == "/invocations" && r.method == "POST") {
    return Invoke(ref, r);
  } else if (sub == "/versions") {
    return Versions(ref, r);
  } else if (sub == "/aliases" || sub.rfind("/aliases/", 0) == 0) {
    return Aliases(ref, sub.size() > 9 ? sub.substr(9) : "", r);
  }
  return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + p);
}

// The zip of an upload: decoded straight from the request's bytes when the body was split
// (upload_body.h), else from the parsed document.
static Result<std::string> ZipOf(const std::optional<SplitUpload>& split, const json& code) {
  if (!split) return ZipFromCode(code);
  auto zip = registry::Base64Decode(split->zip);
  if (!zip) return Error{"InvalidParameterValueException", 0, "Code.ZipFile is not valid base64"};
  return zip;
}

HttpResponse LambdaApi::CreateFunction(const HttpRequest& r) {
  // A large body's Code.ZipFile is not copied into a parsed document (peak memory of uploads).
  auto split = SplitLargeUpload(r.body, {"Code", "ZipFile"});
  Result<json> body = split ? Result<json>(std::move(split->body)) : ParseBody(r);
  if (!body) return FromError(body.error());
  const json& b = *body;
  if (!b.contains("FunctionName") || !b["FunctionName"].is_string())
    return ApiError(400, "InvalidParameterValueException", "FunctionName is required");
  auto named = ParseFunctionRef(b["FunctionName"].get<std::string>(), "", r.account);
  if (!named) return FromError(named.error());
  if (auto s = registry::ValidateName(named->name); !s) return FromError(s.error());
  if (named->foreign || !named->qualifier.empty())
    return ApiError(400, "InvalidParameterValueException",
                    "FunctionName must be a name or an unqualified ARN of account " +
                        (r.account.empty() ? std::string(registry::kAccountId) : r.account));
  registry::FunctionConfig base;
  base.name = named->key;  // the function is the caller's account's
  auto cfg = registry::ApplyLambdaChanges(base, b);  // typed, range-checked fields
  if (!cfg) return FromError(cfg.error());
  if (b.contains("PackageType") && b["PackageType"] != "Zip")
    return ApiError(400, "InvalidParameterValueException", "only PackageType Zip is supported");
  auto zip = ZipOf(split, b.value("Code", json::object()));
  if (!zip) return FromError(zip.error());
  auto created = registry_->Create(std::move(cfg.value()), *zip);
  if (!created) return FromError(created.error());
  scheduler_->Prepare(*created);
  return Json(201, registry::ToLambdaJson(created->config));
}

HttpResponse LambdaApi::ListFunctions(const HttpRequest& r) {
  std::vector<ListItem> functions;
  auto all = r.query.find("FunctionVersion");
  if (all != r.query.end() && all->second != "ALL")
    return ApiError(400, "InvalidParameterValueException", "FunctionVersion must be ALL");
  for (const auto& d : registry_->List()) {  // sorted by key
    // a tenant's own; the operator's: every account's
    if (!r.account.empty() && registry::AccountOf(d.config.name) != r.account) continue;
    if (all == r.query.end()) {
      functions.emplace_back(d.config.name, registry::ToLambdaJson(d.config));
      continue;
    }
    for (const auto& v : registry_->Versions(d.config.name))  // FunctionVersion=ALL: every version
      functions.emplace_back(VersionListKey(v.config), VersionListJson(v.config));
  }
  auto page = ListPage(r, functions, "Functions");
  if (!page) return FromError(page.error());
  return Json(200, *page);
}

HttpResponse LambdaApi::GetFunction(const FunctionRef& ref, bool config_only) {
  auto d = Resolve(ref);
  if (!d) return FromError(d.error());
  json conf = registry::ToLambdaJson(d->config);
  if (config_only) return Json(200, conf);
  json out{{"Configuration", conf},
           {"Code", {{"RepositoryType", "S3"},
                     {"Location", "/forklet/v1/functions/" + ref.key + "/code.zip"}}}};
  if (auto reserved = d->config.reserved_concurrency)
    out["Concurrency"] = {{"ReservedConcurrentExecutions", *reserved}};
  return Json(200, out);
}

HttpResponse LambdaApi::DeleteFunction(const FunctionRef& ref) {
  // A qualifier deletes that version only; $LATEST is not one that can go alone (Lambda's rule),
  // and there are no others: never the whole function.
  if (ref.qualifier == "$LATEST" && !ref.foreign && registry_->Get(ref.key))
    return ApiError(400, "InvalidParameterValueException",
                    "$LATEST version cannot be deleted without deleting the function.");
  if (ref.foreign || !registry_->Get(ref.key)) return FromError(NotFound(ref));
  if (!ref.qualifier.empty()) {  // one version only; its instances and zygote go with it
    if (auto s = registry_->DeleteVersion(ref.key, ref.qualifier); !s) return FromError(s.error());
    scheduler_->ForgetFunction(ref.key + ":" + ref.qualifier);
    HttpResponse out;
    out.status = 204;
    return out;
  }
  const auto versions = registry_->Versions(ref.key);
  if (auto s = registry_->Delete(ref.key); !s) return FromError(s.error());
  scheduler_->ForgetFunction(ref.key);
  for (const auto& v : versions) scheduler_->ForgetFunction(registry::VersionKey(v.config));
  if (configs_) (void)configs_->Delete(ref.key);  // queued events of it end as FunctionNotFound
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse LambdaApi::UpdateCode(const FunctionRef& ref, const HttpRequest& r) {
  auto split = SplitLargeUpload(r.body, {"ZipFile"});
  Result<json> body = split ? Result<json>(std::move(split->body)) : ParseBody(r);
  if (!body) return FromError(body.error());
  if (auto d = ResolveLatest(ref, "UpdateFunctionCode"); !d) return FromError(d.error());
  auto options = ReadChangeOptions(*body, true);
  if (!options) return FromError(options.error());
  if (auto s = registry::CheckUnsupportedCodeFields(*body); !s) return FromError(s.error());
  auto zip = ZipOf(split, *body);
  if (!zip) return FromError(zip.error());
  auto updated = registry_->UpdateCode(ref.key, *zip, *options);
  if (!updated) return FromError(updated.error());
  if (!options->dry_run) {
    scheduler_->FunctionChanged(ref.key);
    scheduler_->Prepare(*updated);  // the new revision's code image, ahead of its first start
  }
  return Json(200, registry::ToLambdaJson(updated->config));
}

HttpResponse LambdaApi::UpdateConfiguration(const FunctionRef& ref, const HttpRequest& r) {
  auto body = ParseBody(r);
  if (!body) return FromError(body.error());
  if (auto d = ResolveLatest(ref, "UpdateFunctionConfiguration"); !d) return FromError(d.error());
  auto options = ReadChangeOptions(*body, false);
  if (!options) return FromError(options.error());
  auto updated = registry_->UpdateConfiguration(ref.key, *body, *options);
  if (!updated) return FromError(updated.error());
  scheduler_->FunctionChanged(ref.key);
  scheduler_->Prepare(updated->config);
  return Json(200, registry::ToLambdaJson(updated->config));
}

HttpResponse LambdaApi::Concurrency(const FunctionRef& ref, const HttpRequest& r) {
  auto d = ResolveLatest(ref, "Function concurrency");
  if (!d) return FromError(d.error());
  if (r.method == "DELETE") {
    auto changed = registry_->SetReservedConcurrency(ref.key, std::nullopt);
    if (!changed) return FromError(changed.error());
    HttpResponse out;
    out.status = 204;
    return out;
  }
  if (r.method == "GET") {
    auto reserved = d->config.reserved_concurrency;
    return Json(200, reserved ? json{{"ReservedConcurrentExecutions", *reserved}} : json::object());
  }
  auto body = ParseBody(r);
  if (!body) return FromError(body.error());
  auto v = body->value("ReservedConcurrentExecutions", json());
  if (!v.is_number_unsigned() || v.get<uint64_t>() > 1000)
    return ApiError(400, "InvalidParameterValueException",
                    "ReservedConcurrentExecutions must be an integer from 0 to 1000");
  // Persisted in the function's record before the client hears of it.
  auto changed = registry_->SetReservedConcurrency(ref.key, v.get<uint32_t>());
  if (!changed) return FromError(changed.error());
  return Json(200, json{{"ReservedConcurrentExecutions", v.get<uint32_t>()}});
}

HttpResponse LambdaApi::Invoke(const FunctionRef& ref, const HttpRequest& r) {
  std::string type = r.Header("x-amz-invocation-type");
  if (type.empty()) type = "RequestResponse";
  if (type != "RequestResponse" && type != "Event" && type != "DryRun")
    return ApiError(400, "InvalidParameterValueException",
                    "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun");
  auto fn = Resolve(ref);
  if (!fn) return FromError(fn.error());
  size_t limit = type == "Event" ? limits_.max_async_payload : limits_.max_sync_payload;
  if (r.body.size() > limit)
    return ApiError(413, "RequestTooLargeException",
                    "Request must be smaller than " + std::to_string(limit) +
                        " bytes for the InvokeFunction operation");
  // Checked, never re-serialized: the function gets the bytes as sent (numbers of any size too).
  if (!r.body.empty() && !IsJsonText(r.body))
    return ApiError(400, "InvalidRequestContentException",
                    "Could not parse request body into json: the payload is not valid JSON");
  if (type == "DryRun") {
    HttpResponse out;
    out.status = 204;
    return out;
  }
  // Held until the result is in hand, so that a drain waits for this invocation.
  auto admission = scheduler_->Admit();
  if (!admission)
    return ApiError(503, "ServiceUnavailableException",
                    "forkletd is draining on this node: it accepts no new invocations "
                    "(send them to another node)");
  std::string request_id = core::NewRequestId();
  if (type == "Event") {
    // 202 only once the event is in the event log: from then on it runs at least once.
    if (!events_)
      return ApiError(503, "ServiceUnavailableException", "this forkletd accepts no Event invocations");
    if (fn->config.version != registry::kLatest || (!ref.qualifier.empty() && ref.qualifier != registry::kLatest))
      return ApiError(400, "InvalidParameterValueException",
                      "forklet runs Event invocations on $LATEST only: invoke a version or alias "
                      "with RequestResponse");
    if (auto s = events_->Accept(ref.key, request_id, r.body); !s) {
      if (s.error().op == "TooManyRequestsException") return EventRefused(s.error());
      return ApiError(503, "ServiceUnavailableException",
                      "forkletd could not store the event, which was not accepted: " +
                          s.error().ToString());
    }
    HttpResponse out;
    out.status = 202;
    out.headers["X-Amzn-RequestId"] = request_id;
    return out;
  }

  // An alias's invocations run its version's instances; the context names the alias.
  const bool via_alias = !ref.qualifier.empty() && ref.qualifier != fn->config.version;
  core::InvokeResult result =
      scheduler_->Invoke(*fn, request_id, r.body, r.Header("x-forklet-fresh-instance") == "1",
                         via_alias ? registry::QualifiedArn(ref.key, ref.qualifier) : "");
  Observe(fn->config, request_id, result);  // recorded before the client hears of it
  timeline::Mark(timeline::Point::kBilled);
  if (result.outcome == core::Outcome::kThrottled) {
    HttpResponse out = ApiError(429, "TooManyRequestsException", result.error_message);
    out.body = json{{"Type", "User"}, {"message", result.error_message},
                    {"Reason", "ReservedFunctionConcurrentInvocationLimitExceeded"}}.dump();
    return out;
  }
  if (result.outcome == core::Outcome::kSetupFailed)
    return ApiError(500, "ServiceException", "could not start an instance: " + result.error_message);
  result.report_line = core::ReportLine(request_id, result, fn->config.memory_mb);

  HttpResponse out;
  out.status = 200;
  out.body = std::move(result.body);
  out.headers["Content-Type"] = "application/json";
  out.headers["X-Amzn-RequestId"] = request_id;
  out.headers["X-Amz-Executed-Version"] = fn->config.version;
  if (result.outcome != core::Outcome::kSuccess) out.headers["X-Amz-Function-Error"] = "Unhandled";
  out.headers["X-Forklet-Start-Kind"] = core::StartKindName(result.start);
  out.headers["X-Forklet-Outcome"] = core::OutcomeName(result.outcome);
  out.headers["X-Forklet-Stages"] = core::FormatStages(result.stages);
  char buf[64];
  snprintf(buf, sizeof(buf), "%.3f", result.total_ms);
  out.headers["X-Forklet-Total-Ms"] = buf;
  out.headers["X-Forklet-Billed-Ms"] = std::to_string(result.billed_ms);
  if (r.Header("x-amz-log-type") == "Tail") {
    std::string log = ComposeLog(request_id, result, fn->config);
    if (log.size() > 4096) log = log.substr(log.size() - 4096);
    out.headers["X-Amz-Log-Result"] = registry::Base64Encode(log);
  }
  return out;
}

}  // namespace forklet::api
