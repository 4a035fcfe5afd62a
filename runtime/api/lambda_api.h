// The AWS Lambda REST API where forklet overlaps it. Routes requests to the registry and the
// scheduler; holds no state of its own. forklet's own extras are in admin_api.h.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "runtime/api/function_ref.h"
#include "runtime/api/http_server.h"
#include "runtime/core/scheduler.h"
#include "runtime/events/event_queue.h"
#include "runtime/registry/registry.h"

namespace forklet::api {

struct ApiLimits {
  size_t max_sync_payload = 6 * 1024 * 1024;  // Lambda: 6 MB for RequestResponse
  size_t max_async_payload = 256 * 1024;      // Lambda: 256 KB for Event
};

class LambdaApi {
 public:
  // events: where Event invocations go (null: they are refused); configs: their configuration,
  // removed with the function.
  LambdaApi(registry::Registry* registry, core::Scheduler* scheduler,
            core::InvocationObserver* observer, events::EventQueue* events = nullptr,
            events::InvokeConfigStore* configs = nullptr, ApiLimits limits = {});
  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse CreateFunction(const HttpRequest& r);
  HttpResponse ListFunctions(const HttpRequest& r);
  HttpResponse GetFunction(const FunctionRef& ref, bool config_only);
  HttpResponse DeleteFunction(const FunctionRef& ref);
  HttpResponse UpdateCode(const FunctionRef& ref, const HttpRequest& r);
  HttpResponse UpdateConfiguration(const FunctionRef& ref, const HttpRequest& r);
  HttpResponse Invoke(const FunctionRef& ref, const HttpRequest& r);
  HttpResponse Concurrency(const FunctionRef& ref, const HttpRequest& r);
  // Versions and aliases (lambda_versions_api.cc).
  HttpResponse Versions(const FunctionRef& ref, const HttpRequest& r);
  HttpResponse Aliases(const FunctionRef& ref, const std::string& alias, const HttpRequest& r);
  // Layers: everything under /2018-10-31/layers (lambda_layers_api.cc).
  HttpResponse Layers(const HttpRequest& r);
  // The function a request names, as the qualifier runs it, or the error for it: 404 for an ARN
  // of another account, an unknown name, or a qualifier that names no version or alias
  // ($LATEST, or none, is the function itself), so that a qualifier never widens an operation.
  Result<registry::Deployed> Resolve(const FunctionRef& ref);
  // For changes, which apply to $LATEST only: the function, or 400 for a version or alias
  // qualifier (published versions are immutable).
  Result<registry::Deployed> ResolveLatest(const FunctionRef& ref, const char* operation);
  void Observe(const registry::FunctionConfig& cfg, const std::string& request_id,
               core::InvokeResult& result);

  registry::Registry* registry_;
  core::Scheduler* scheduler_;
  core::InvocationObserver* observer_;
  events::EventQueue* events_;
  events::InvokeConfigStore* configs_;
  ApiLimits limits_;
};

HttpResponse Json(int status, const nlohmann::json& body);
// {"Type":"User","message":...} with X-Amzn-ErrorType, as Lambda's API errors look.
HttpResponse ApiError(int status, const std::string& type, const std::string& message);
// 429 TooManyRequestsException for an event the queue's bounds refused (events::EventQueue::
// Accept), with Retry-After and a Reason: EventQueueFull, or EventStorageLow (e.err ENOSPC).
HttpResponse EventRefused(const Error& e);
// What a tenant (HttpRequest::account set) gets on the operator's routes, which show or change
// the whole node (every account's functions): 403 AccessDeniedException.
HttpResponse OperatorOnly(const HttpRequest& r);

}  // namespace forklet::api
