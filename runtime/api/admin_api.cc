// forklet's extras: health, admin drops, code download.
#include "runtime/api/admin_api.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"

namespace forklet::api {
using nlohmann::json;

HttpResponse AdminApi::Handle(const HttpRequest& r) {
  const std::string& p = r.path;
  if (p == "/forklet/v1/health" && r.method == "GET") {
    auto c = scheduler_->Counts();
    json zygotes = json::array();
    for (const auto& z : launcher_->Zygotes())
      zygotes.push_back({{"runtime", z.runtime}, {"pid", z.pid}, {"boot_ms", z.boot_ms}, {"forks", z.forks}});
    return Json(200, json{{"status", "ready"},
                          {"cgroups", launcher_->cgroups().version()},
                          {"instances", {{"idle", c.idle}, {"busy", c.busy}, {"memory_mb", c.memory_mb}}},
                          {"zygotes", zygotes}});
  }
  const std::string zyg = "/forklet/v1/admin/zygotes/";
  if (p.rfind(zyg, 0) == 0 && r.method == "POST" && p.size() > zyg.size() + 5 &&
      p.substr(p.size() - 5) == "/drop") {
    std::string runtime = p.substr(zyg.size(), p.size() - zyg.size() - 5);
    std::string family = registry::RuntimeFamily(runtime);
    if (family.empty()) return ApiError(404, "ResourceNotFoundException", "unknown runtime " + runtime);
    bool dropped = launcher_->DropZygote(family);
    return Json(200, json{{"runtime", family}, {"dropped", dropped}});
  }
  if (p == "/forklet/v1/admin/instances/drop" && r.method == "POST") {
    auto it = r.query.find("function");
    std::string fn = it == r.query.end() ? "" : it->second;
    return Json(200, json{{"dropped", scheduler_->DropIdle(fn)}});
  }
  const std::string fns = "/forklet/v1/functions/";
  if (p.rfind(fns, 0) == 0 && r.method == "GET" && p.size() > fns.size() + 9 &&
      p.substr(p.size() - 9) == "/code.zip") {
    auto d = registry_->Get(p.substr(fns.size(), p.size() - fns.size() - 9));
    if (!d) return ApiError(404, "ResourceNotFoundException", "no such function");
    std::ifstream f(d->zip_path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    HttpResponse out;
    out.headers["Content-Type"] = "application/zip";
    out.body = ss.str();
    return out;
  }
  return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + p);
}

}  // namespace forklet::api
