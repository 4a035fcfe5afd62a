// Event invocations' routes: Lambda's event invoke configuration
// (/2019-09-25/functions/NAME/event-invoke-config[/list]) and forklet's queue and dead-letter
// store (/forklet/v1/events...). The queue itself is runtime/events/event_queue.h.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "runtime/events/event_queue.h"
#include "runtime/events/invoke_config.h"
#include "runtime/registry/registry.h"

namespace forklet::api {

class EventsApi {
 public:
  EventsApi(registry::Registry* registry, events::EventQueue* queue, events::InvokeConfigStore* configs)
      : registry_(registry), queue_(queue), configs_(configs) {}

  static bool Serves(const std::string& path);
  HttpResponse Handle(const HttpRequest& request);
  // Per function: queue depth, oldest age, received, retried, dropped by reason (GET /stats too).
  nlohmann::json QueueStats();

 private:
  HttpResponse InvokeConfig(const std::string& name, const HttpRequest& r, bool list);
  HttpResponse DeadLetters(const HttpRequest& r);
  HttpResponse Redrive(const std::string& id);

  registry::Registry* registry_;
  events::EventQueue* queue_;
  events::InvokeConfigStore* configs_;
};

}  // namespace forklet::api
