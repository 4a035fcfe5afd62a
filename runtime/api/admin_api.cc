// forklet's extras: health, capacity, drain, admin drops, code download.
#include "runtime/api/admin_api.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"
#include "runtime/registry/function_key.h"

namespace forklet::api {
using nlohmann::json;

namespace {

// MemAvailable of /proc/meminfo in MB: what the host could still give, whatever the budget says.
uint64_t HostAvailableMb() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return kb / 1024;
  }
  return 0;
}

}  // namespace

// What a control plane places work by: memory left for new instances, instances by state,
// ready zygotes (a new instance is a zygote start, not a cold one), invocations in flight.
json AdminApi::Capacity() {
  auto c = scheduler_->Counts();
  auto o = scheduler_->options();
  json runtimes = json::array();
  // Spare zygotes: a function's first start binds one (a zygote start, not a cold one).
  for (const auto& z : launcher_->Zygotes())
    if (z.function.empty()) runtimes.push_back(z.runtime);
  uint64_t budget = o.memory_budget_mb;
  return json{
      {"status", scheduler_->draining() ? "draining" : "ready"},
      {"in_flight", scheduler_->InFlight()},
      {"memory_mb",
       {{"budget", budget},
        {"reserved", c.memory_mb},
        {"free", budget > c.memory_mb ? budget - c.memory_mb : 0},
        {"idle", c.idle_memory_mb},  // reserved by idle instances, evicted when memory is needed
        // held by pre-booted stem cells out of the free memory, given up when instances need it
        {"standby", launcher_->StandbyMemoryMb()},
        {"host_available", HostAvailableMb()}}},
      {"instances", {{"idle", c.idle}, {"running", c.busy - c.starting}, {"starting", c.starting}}},
      {"zygotes", {{"ready", runtimes.size()}, {"runtimes", runtimes}}},
      {"max_concurrency", o.max_instances_per_function},
      {"keep_alive_s", std::chrono::duration_cast<std::chrono::seconds>(o.keep_alive).count()}};
}

HttpResponse AdminApi::Handle(const HttpRequest& r) {
  const std::string& p = r.path;
  const std::string fns = "/forklet/v1/functions/";
  // A tenant may download its own functions' code (GetFunction's Code.Location); the rest shows
  // or changes the whole node.
  if (!r.account.empty() && p.rfind(fns, 0) != 0) return OperatorOnly(r);
  if (p == "/forklet/v1/health" && r.method == "GET") {
    auto c = scheduler_->Counts();
    json zygotes = json::array();
    for (const auto& z : launcher_->Zygotes())
      zygotes.push_back({{"runtime", z.runtime}, {"function", z.function}, {"instances", z.instances},
                         {"pid", z.pid}, {"boot_ms", z.boot_ms}, {"forks", z.forks},
                         {"fault_ahead_pages", z.fault_ahead_pages}});
    json stem_cells = json::object();
    for (const auto& [family, s] : launcher_->StemCells())
      stem_cells[family] = {{"ready", s.ready}, {"booting", s.booting}, {"target", s.target},
                            {"memory_mb", s.reserved_mb}, {"last_boot_ms", s.last_boot_ms},
                            {"pids", s.pids}};
    auto pre = launcher_->Preforked();
    auto areas = launcher_->TmpAreas();
    auto netns = launcher_->Netns();
    json preforked = {{"ready", pre.ready}, {"forking", pre.forking}, {"functions", pre.functions},
                      {"memory_mb", pre.reserved_mb}, {"last_fork_ms", pre.last_fork_ms}, {"pids", pre.pids}};
    return Json(200, json{{"status", scheduler_->draining() ? "draining" : "ready"},
                          {"cgroups", launcher_->cgroups().version()},
                          {"instances", {{"idle", c.idle}, {"busy", c.busy}, {"memory_mb", c.memory_mb}, {"retiring", c.retiring},
                                         {"idle_pids", scheduler_->IdlePids()}}},
                          {"zygotes", zygotes},
                          {"snapshots", launcher_->SnapshotReport()},
                          {"stem_cells", stem_cells},
                          {"preforked", preforked},
                          {"tmp_areas", {{"made", areas.made}, {"recycled", areas.recycled},
                                         {"discarded", areas.discarded}}},
                          {"netns", {{"made", netns.made}, {"reused", netns.reuse.reused},
                                     {"discarded", netns.reuse.discarded}, {"unclean", netns.reuse.unclean},
                                     {"time_wait_removed", netns.reuse.time_wait_removed},
                                     {"cached", netns.reuse.cached}}}});
  }
  if (p == "/forklet/v1/capacity" && r.method == "GET") return Json(200, Capacity());
  if (p == "/forklet/v1/admin/drain" && r.method == "POST") {
    scheduler_->BeginDrain();
    return Json(200, Capacity());
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
  if (p.rfind(fns, 0) == 0 && r.method == "GET" && p.size() > fns.size() + 9 &&
      p.substr(p.size() - 9) == "/code.zip") {
    const std::string key = p.substr(fns.size(), p.size() - fns.size() - 9);
    auto q = r.query.find("Qualifier");  // a version's own zip (GetFunction's Code.Location)
    auto d = registry_->Resolve(key, q == r.query.end() ? "" : q->second);
    if (!d || (!r.account.empty() && registry::AccountOf(key) != r.account))
      return ApiError(404, "ResourceNotFoundException", "no such function");
    std::ifstream f(d->zip_path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    HttpResponse out;
    out.headers["Content-Type"] = "application/zip";
    out.body = ss.str();
    return out;
  }
  // A layer version's zip (GetLayerVersion's Content.Location): /forklet/v1/layers/KEY/N/content.zip
  const std::string layers = "/forklet/v1/layers/";
  if (p.rfind(layers, 0) == 0 && r.method == "GET" && p.size() > layers.size() + 12 &&
      p.substr(p.size() - 12) == "/content.zip") {
    const std::string rest = p.substr(layers.size(), p.size() - layers.size() - 12);
    const auto slash = rest.rfind('/');
    const std::string key = rest.substr(0, slash == std::string::npos ? 0 : slash);
    const std::string n = slash == std::string::npos ? "" : rest.substr(slash + 1);
    std::optional<registry::LayerVersion> v;
    if (!n.empty() && n.size() <= 10 && n.find_first_not_of("0123456789") == std::string::npos &&
        (r.account.empty() || registry::AccountOf(key) == r.account))
      v = registry_->Layers().Get(key, std::stoull(n));
    if (!v) return ApiError(404, "ResourceNotFoundException", "no such layer version");
    std::ifstream f(v->content->zip, std::ios::binary);
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
