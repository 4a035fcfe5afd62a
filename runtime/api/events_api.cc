// Event invoke configuration (Lambda's API) and the queue's and dead-letter store's routes.
#include "runtime/api/events_api.h"

#include <cstring>

#include "runtime/api/function_ref.h"
#include "runtime/api/lambda_api.h"
#include "runtime/api/pagination.h"
#include "runtime/registry/function.h"

namespace forklet::api {
namespace {

using nlohmann::json;

constexpr const char* kConfigPrefix = "/2019-09-25/functions/";
constexpr const char* kEventsPrefix = "/forklet/v1/events";

HttpResponse FromError(const Error& e) {
  if (e.op == "ResourceNotFoundException") return ApiError(404, e.op, e.message);
  if (e.op == "InvalidParameterValueException") return ApiError(400, e.op, e.message);
  if (e.op == "TooManyRequestsException") return EventRefused(e);
  if (e.err == ENOSPC || e.err == EDQUOT || e.err == EROFS)
    return ApiError(503, "ServiceUnavailableException",
                    "forkletd cannot store this on this node: " + e.ToString());
  return ApiError(500, "ServiceException", e.ToString());
}

json DeadJson(const events::DeadEvent& d) {
  return json{{"RequestId", d.data->id},
              {"FunctionName", d.data->function},
              {"Qualifier", d.data->qualifier.empty() ? registry::kLatest : d.data->qualifier},
              {"Reason", d.reason},
              {"Detail", d.detail},
              {"AcceptedMs", d.data->accepted_ms},
              {"DeadMs", d.dead_ms},
              {"ApproximateInvokeCount", d.invocations},
              {"Payload", d.data->payload}};
}

}  // namespace

bool EventsApi::Serves(const std::string& path) {
  if (path.rfind(kEventsPrefix, 0) == 0) return true;
  return path.rfind(kConfigPrefix, 0) == 0 && path.find("/event-invoke-config") != std::string::npos;
}

HttpResponse EventsApi::Handle(const HttpRequest& r) {
  const std::string& p = r.path;
  if (p.rfind(kConfigPrefix, 0) == 0) {
    std::string rest = p.substr(strlen(kConfigPrefix));
    auto slash = rest.find('/');
    // The function's key in the caller's account (another account's is not found).
    auto ref = ParseFunctionRef(rest.substr(0, slash), "", r.account);
    if (!ref) return FromError(ref.error());
    if (ref->foreign) return ApiError(404, "ResourceNotFoundException", "Function not found: " + ref->shown);
    const std::string& name = ref->key;
    std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
    if (sub == "/event-invoke-config") return InvokeConfig(name, r, false);
    if (sub == "/event-invoke-config/list" && r.method == "GET") return InvokeConfig(name, r, true);
  } else if (!r.account.empty()) {
    return OperatorOnly(r);  // queues and dead letters of every account
  } else if (p == std::string(kEventsPrefix) && r.method == "GET") {
    return Json(200, json{{"Functions", QueueStats()}});
  } else if (p == std::string(kEventsPrefix) + "/dead-letters" && r.method == "GET") {
    return DeadLetters(r);
  } else if (p.rfind(std::string(kEventsPrefix) + "/dead-letters/", 0) == 0 && r.method == "POST" &&
             p.size() > 8 && p.substr(p.size() - 8) == "/redrive") {
    size_t from = strlen(kEventsPrefix) + strlen("/dead-letters/");
    return Redrive(p.substr(from, p.size() - 8 - from));
  }
  return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + p);
}

HttpResponse EventsApi::InvokeConfig(const std::string& name, const HttpRequest& r, bool list) {
  if (!registry_->Get(name))
    return ApiError(404, "ResourceNotFoundException",
                    "Function not found: " + registry::FunctionArn(name));
  if (auto q = r.query.find("Qualifier"); q != r.query.end() && q->second != "$LATEST")
    return ApiError(404, "ResourceNotFoundException",
                    "Function not found: " + registry::FunctionArn(name) + ":" + q->second +
                        " (forklet has only $LATEST)");
  if (list) {
    std::vector<ListItem> configs;
    if (auto c = configs_->Get(name)) configs.emplace_back(name, events::ToLambdaJson(name, *c));
    auto page = ListPage(r, configs, "FunctionEventInvokeConfigs", {50, 50});  // Lambda: 1..50
    if (!page) return ApiError(400, page.error().op, page.error().message);
    return Json(200, *page);
  }
  if (r.method == "GET") {
    auto c = configs_->Get(name);
    if (!c)
      return ApiError(404, "ResourceNotFoundException",
                      "The function " + registry::FunctionArn(name) + " doesn't have an EventInvokeConfig");
    return Json(200, events::ToLambdaJson(name, *c));
  }
  if (r.method == "DELETE") {
    if (auto s = configs_->Delete(name); !s) return FromError(s.error());
    HttpResponse out;
    out.status = 204;
    return out;
  }
  if (r.method != "PUT" && r.method != "POST")
    return ApiError(405, "UnknownOperationException", "method not allowed");
  json body = json::parse(r.body.empty() ? std::string("{}") : r.body, nullptr, false);
  if (!body.is_object())
    return ApiError(400, "InvalidRequestContentException", "Could not parse request body into json");
  auto c = configs_->Put(name, body, r.method == "POST");  // POST is UpdateFunctionEventInvokeConfig
  if (!c) return FromError(c.error());
  return Json(200, events::ToLambdaJson(name, *c));
}

json EventsApi::QueueStats() {
  json out = json::object();
  for (const auto& [name, s] : queue_->Stats()) {
    out[name] = {{"depth", s.depth},
                 {"in_flight", s.in_flight},
                 {"oldest_age_ms", s.oldest_age_ms},
                 {"received", s.received},
                 {"succeeded", s.succeeded},
                 {"failed_attempts", s.failed_attempts},
                 {"retried", s.retried},
                 {"throttled", s.throttled},
                 {"recovered", s.recovered},
                 {"dropped", s.dropped},
                 {"refused", s.refused},
                 {"dead_letters", queue_->DeadLetters(name).size()}};
  }
  return out;
}

HttpResponse EventsApi::DeadLetters(const HttpRequest& r) {
  auto f = r.query.find("function");
  json list = json::array();
  for (const auto& d : queue_->DeadLetters(f == r.query.end() ? "" : f->second)) list.push_back(DeadJson(d));
  return Json(200, json{{"DeadLetters", list}});
}

HttpResponse EventsApi::Redrive(const std::string& id) {
  auto fresh = queue_->Redrive(id);
  if (!fresh) return FromError(fresh.error());
  return Json(202, json{{"RequestId", id}, {"NewRequestId", *fresh}});
}

}  // namespace forklet::api
