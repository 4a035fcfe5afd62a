// forklet's reporting routes: GET /forklet/v1/stats (latency per function, runtime and start
#include "runtime/api/reporting_api.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"
#include "runtime/billing/bill.h"
#include "runtime/registry/function_key.h"
#include "runtime/timeline/request_timeline.h"

namespace forklet::api {
namespace {

using nlohmann::json;

constexpr const char* kStats = "/forklet/v1/stats";
constexpr const char* kBill = "/forklet/v1/bill";
constexpr const char* kMetrics = "/metrics";

std::string Query(const HttpRequest& r, const std::string& key, const std::string& fallback = "") {
  auto it = r.query.find(key);
  return it == r.query.end() ? fallback : it->second;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

// The ?function= of a request as a function key: a tenant's names are of its account.
std::string FunctionQuery(const HttpRequest& r) {
  std::string name = Query(r, "function");
  if (name.empty() || r.account.empty()) return name;
  if (name.find('.') != std::string::npos) return "-";  // no name has one: matches nothing
  return registry::FunctionKey(r.account, name);
}

// Whether the caller may see a function's figures: the operator all, a tenant its own.
bool Visible(const HttpRequest& r, const std::string& key) {
  return r.account.empty() || registry::AccountOf(key) == r.account;
}

// An object keyed by function key, with what the caller may not see left out.
json OnlyVisible(const HttpRequest& r, const std::string& only, json by_function) {
  if (!by_function.is_object() || (only.empty() && r.account.empty())) return by_function;
  json kept = json::object();
  for (auto& [key, value] : by_function.items())
    if ((only.empty() || key == only) && Visible(r, key)) kept[key] = value;
  return kept;
}

HttpResponse Text(const std::string& content_type, std::string body) {
  HttpResponse out;
  out.headers["Content-Type"] = content_type;
  out.body = std::move(body);
  return out;
}

}  // namespace

bool ReportingApi::Serves(const std::string& path) {
  return path == kStats || path == kBill || path == kMetrics;
}

HttpResponse ReportingApi::Handle(const HttpRequest& r) {
  if (r.method != "GET")
    return ApiError(405, "UnknownOperationException", "Unknown operation " + r.method + " " + r.path);
  if (r.path == kStats) return Stats(r);
  if (r.path == kBill) return Bill(r);
  if (r.path == kMetrics) return r.account.empty() ? Metrics() : OperatorOnly(r);
  return ApiError(404, "UnknownOperationException", "Unknown operation " + r.method + " " + r.path);
}

HttpResponse ReportingApi::Stats(const HttpRequest& r) {
  bool histogram = Query(r, "histogram") == "1" || Query(r, "histogram") == "true";
  json series = json::array();
  const std::string only = FunctionQuery(r);
  for (const auto& s : stats_->Snapshot(histogram, only)) {
    if (!Visible(r, s.function)) continue;
    json stages = json::array();
    for (const auto& [name, ms] : s.stage_p50_ms) stages.push_back({{"name", name}, {"p50_ms", ms}});
    // The operator sees keys ("ACCOUNT.NAME" outside the default account), a tenant its names.
    json j = {{"function", r.account.empty() ? s.function : registry::NameOf(s.function)},
              {"runtime", s.runtime},       {"start_kind", s.start_kind},
              {"count", s.count},           {"p50_ms", s.p50_ms},   {"p90_ms", s.p90_ms},
              {"p99_ms", s.p99_ms},         {"max_ms", s.max_ms},
              {"mean_ms", s.count ? s.sum_ms / static_cast<double>(s.count) : 0.0},
              {"stages_p50_ms", stages},    {"outcomes", s.outcomes}};
    if (histogram) {
      json h = json::array();
      for (const auto& b : s.histogram) h.push_back({b.lo_ms, b.hi_ms, b.count});
      j["histogram"] = h;  // [lower ms, upper ms, count] per non-empty bucket
    }
    series.push_back(std::move(j));
  }
  json out{{"since", billing::FormatTime(stats_->since_epoch_ms())},
            {"since_ms", stats_->since_epoch_ms()},
            {"series", series}};
  if (r.account.empty()) {  // the node's own warm path, stage by stage (not a tenant's to see)
    json warm = json::object();
    for (const auto& [runtime, stages] : timeline::Summary())
      for (const auto& st : stages)
        warm[runtime].push_back({{"stage", st.name}, {"n", st.n}, {"p50_us", st.p50_us}, {"p90_us", st.p90_us},
                                 {"p99_us", st.p99_us}, {"mean_us", st.mean_us}});
    out["warm_path"] = std::move(warm);
  }
  if (events_) out["events"] = OnlyVisible(r, only, events_());
  if (snapshots_) {
    json snap = snapshots_();
    if (snap.contains("functions")) snap["functions"] = OnlyVisible(r, only, snap["functions"]);
    out["snapshots"] = std::move(snap);
  }
  return Json(200, out);
}

HttpResponse ReportingApi::Bill(const HttpRequest& r) {
  if (!ledger_)
    return ApiError(503, "ServiceException", "this daemon runs without a ledger (--no-ledger)");
  int64_t now = NowMs();
  auto from = billing::ParseTime(Query(r, "from", "0"), now);
  if (!from) return ApiError(400, "InvalidParameterValueException", "from: " + from.error().ToString());
  auto to = billing::ParseTime(Query(r, "to", "now"), now);
  if (!to) return ApiError(400, "InvalidParameterValueException", "to: " + to.error().ToString());
  if (*to < *from)
    return ApiError(400, "InvalidParameterValueException", "the window ends before it starts");
  std::string format = Query(r, "format", "json");
  if (format != "json" && format != "csv" && format != "table")
    return ApiError(400, "InvalidParameterValueException", "format must be json, csv or table");
  auto bill = billing::MakeBill(*ledger_, *from, *to, FunctionQuery(r), r.account);
  if (!bill) return ApiError(500, "ServiceException", bill.error().ToString());
  if (format == "csv") return Text("text/csv; charset=utf-8", billing::BillCsv(*bill));
  if (format == "table") return Text("text/plain; charset=utf-8", billing::BillTable(*bill));
  return Text("application/json", billing::BillJson(*bill));
}

HttpResponse ReportingApi::Metrics() {
  billing::LedgerCounters counters;
  if (ledger_) counters = ledger_->counters();
  return Text(metrics::kPrometheusContentType,
              metrics::PrometheusText(stats_->Snapshot(false), gauges_(), ledger_ ? &counters : nullptr));
}

}  // namespace forklet::api
