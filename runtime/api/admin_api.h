// forklet's own API under /forklet/v1: health, capacity, drain, admin actions on instances and
// zygotes, code download. (The Lambda-compatible part is lambda_api.h.)
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/registry/registry.h"

namespace forklet::api {

class AdminApi {
 public:
  AdminApi(registry::Registry* registry, core::Scheduler* scheduler, core::Launcher* launcher)
      : registry_(registry), scheduler_(scheduler), launcher_(launcher) {}
  HttpResponse Handle(const HttpRequest& request);  // paths below /forklet/
  nlohmann::json Capacity();                        // GET capacity (and the drain's answer)

 private:
  registry::Registry* registry_;
  core::Scheduler* scheduler_;
  core::Launcher* launcher_;
};

}  // namespace forklet::api
