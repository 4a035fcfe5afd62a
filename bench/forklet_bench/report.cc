// A run's results and their forms: the table for people, JSON and CSV for machines, and the
#include "bench/forklet_bench/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace forklet::bench {
namespace {

using nlohmann::json;

std::string Format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string FirstLine(const std::string& path, const std::string& prefix = {}) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (prefix.empty()) return line;
    if (line.rfind(prefix, 0) == 0) {
      auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return {};
}

const LatencyRow* Find(const BenchResults& r, const std::string& name) {
  for (const auto& row : r.rows)
    if (row.name == name && !row.ms.empty()) return &row;
  return nullptr;
}

// p50 of `row` over p50 of baseline `name`, or NAN.
double Ratio(const BenchResults& r, const LatencyRow& row, const char* name) {
  const LatencyRow* b = Find(r, name);
  if (!b || b->summary.p50 <= 0) return NAN;
  return row.summary.p50 / b->summary.p50;
}

std::string RatioCell(double v) {
  if (std::isnan(v)) return "-";
  return v >= 100 ? Format("%.0fx", v) : v >= 10 ? Format("%.1fx", v) : Format("%.2fx", v);
}

const SweepPoint* BestAtTwoPlus(const BenchResults& r, const std::string& family, const std::string& kind) {
  const SweepPoint* best = nullptr;
  for (const auto& p : r.sweep)
    if (p.family == family && p.kind == kind && p.clients >= 2 && (!best || p.throughput > best->throughput))
      best = &p;
  return best;
}

// The per-kind stage table: stage names in the order the daemon reports them, then the derived
// rows: what the stages leave unexplained, the daemon's rest and what lies outside the daemon.
std::string StageTable(const BenchResults& r) {
  if (r.runs.empty()) return {};
  std::vector<std::string> names;
  for (const auto& run : r.runs)
    for (const auto& n : run.stage_order)
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  // start_total and handler close the list: they sum up the rest.
  for (const char* last : {"start_total", "handler"}) {
    auto it = std::find(names.begin(), names.end(), last);
    if (it != names.end()) {
      names.erase(it);
      names.push_back(last);
    }
  }
  // Two header lines: each runtime over its first column, then the start kinds.
  std::string out = Format("%-34s", "where the time goes (median ms)");
  for (size_t i = 0; i < r.runs.size(); ++i)
    out += Format(" %10s", i == 0 || r.runs[i - 1].family != r.runs[i].family ? r.runs[i].family.c_str() : "");
  out += Format("\n%-34s", "");
  for (const auto& run : r.runs) out += Format(" %10s", run.kind.c_str());
  out += "\n";
  auto cell = [](const KindRun& run, const std::string& n) {
    auto it = run.stages.find(n);
    return it == run.stages.end() ? std::string("-") : Format("%.3f", Median(it->second));
  };
  for (const auto& n : names) {
    out += Format("  %-32s", n.c_str());
    for (const auto& run : r.runs) out += Format(" %10s", cell(run, n).c_str());
    out += "\n";
  }
  // Per sample: start_total minus its named parts; daemon total minus start and handler; end to
  // end minus the daemon's total.
  static const std::set<std::string> kNotParts = {"start_total", "handler"};
  auto derived = [&](const char* label, auto fn) {
    out += Format("  %-32s", label);
    for (const auto& run : r.runs) {
      std::vector<double> xs;
      for (size_t i = 0; i < run.e2e_ms.size(); ++i) xs.push_back(fn(run, i));
      out += Format(" %10s", xs.empty() ? "-" : Format("%.3f", Median(xs)).c_str());
    }
    out += "\n";
  };
  auto at = [](const KindRun& run, const std::string& n, size_t i) {
    auto it = run.stages.find(n);
    return it == run.stages.end() || i >= it->second.size() ? 0.0 : it->second[i];
  };
  derived("start: not in a named stage", [&](const KindRun& run, size_t i) {
    if (!run.stages.count("start_total")) return 0.0;
    double parts = 0;
    for (const auto& [n, xs] : run.stages)
      if (!kNotParts.count(n) && i < xs.size()) parts += xs[i];
    return at(run, "start_total", i) - parts;
  });
  derived("daemon: rest (channel, sched)", [&](const KindRun& run, size_t i) {
    return run.daemon_ms[i] - at(run, "start_total", i) - at(run, "handler", i);
  });
  derived("outside the daemon: HTTP, client", [&](const KindRun& run, size_t i) {
    return run.e2e_ms[i] - run.daemon_ms[i];
  });
  derived("end to end (client)", [&](const KindRun& run, size_t i) { return run.e2e_ms[i]; });
  return out;
}

json SummaryJson(const Summary& s) {
  return json{{"n", s.n},     {"p50", s.p50}, {"p90", s.p90},  {"p99", s.p99},
              {"p999", s.p999}, {"max", s.max}, {"mean", s.mean}};
}

}  // namespace

std::string DescribeMachine() {
  utsname u{};
  uname(&u);
  std::string cpu = FirstLine("/proc/cpuinfo", "model name");
  std::string load = FirstLine("/proc/loadavg");
  return Format("%ld CPUs (%s), Linux %s, load %s", sysconf(_SC_NPROCESSORS_ONLN), cpu.c_str(),
                u.release, load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1)).c_str());
}

void CheckBars(BenchResults& r, const std::string& family) {
  r.bars.clear();
  const LatencyRow* cold = Find(r, family + " cold");
  const LatencyRow* zyg = Find(r, family + " zygote");
  const LatencyRow* warm = Find(r, family + " warm");
  const LatencyRow* py = Find(r, kPythonBaseline);
  const LatencyRow* bw = Find(r, kBwrapBaseline);
  const LatencyRow* floor = Find(r, kFloorBaseline);
  auto add = [&](std::string bar, std::string target, bool have, std::string measured, bool met) {
    r.bars.push_back({std::move(bar), have ? std::move(measured) : "not measured", std::move(target),
                      have ? std::optional<bool>(met) : std::nullopt});
  };
  bool have = zyg && bw;
  add("zygote start p50 at least 15x faster than bwrap + python", ">= 15x",
      have, have ? Format("%.1fx (%.3f vs %.3f ms)", bw->summary.p50 / zyg->summary.p50, bw->summary.p50, zyg->summary.p50) : "",
      have && bw->summary.p50 / zyg->summary.p50 >= 15);
  have = zyg && floor;
  add("zygote start p50 at most 4x the clone floor", "<= 4x",
      have, have ? Format("%.1fx (%.3f vs %.3f ms)", zyg->summary.p50 / floor->summary.p50, zyg->summary.p50, floor->summary.p50) : "",
      have && zyg->summary.p50 <= 4 * floor->summary.p50);
  add("warm p50 under 0.25 ms end to end (loopback HTTP)", "< 0.250 ms", warm != nullptr,
      warm ? Format("%.3f ms", warm->summary.p50) : "", warm && warm->summary.p50 < 0.25);
  have = cold && py;
  add("cold start p50 at most 1.3x bare python3 -c", "<= 1.30x",
      have, have ? Format("%.2fx (%.3f vs %.3f ms)", cold->summary.p50 / py->summary.p50, cold->summary.p50, py->summary.p50) : "",
      have && cold->summary.p50 <= 1.3 * py->summary.p50);
  const SweepPoint* w = BestAtTwoPlus(r, family, "warm");
  add("warm throughput with 2+ clients", ">= 8000/s", w != nullptr,
      w ? Format("%.0f/s (%d clients)", w->throughput, w->clients) : "", w && w->throughput >= 8000);
  const SweepPoint* z = BestAtTwoPlus(r, family, "zygote");
  add("zygote-start throughput with 2+ clients", ">= 400/s", z != nullptr,
      z ? Format("%.0f/s (%d clients)", z->throughput, z->clients) : "", z && z->throughput >= 400);
  // The warm path (issue 21), for every runtime measured: its median near one HTTP answer, its
  // tail near its median, with one connection and with the sweep's most.
  const LatencyRow* http = Find(r, kHttpFloorBaseline);
  for (const auto& row : r.rows) {
    if (row.baseline || row.name.size() <= 5 || row.name.compare(row.name.size() - 5, 5, " warm") != 0) continue;
    const std::string fam = row.name.substr(0, row.name.size() - 5);
    const Summary& s = row.summary;
    add(fam + " warm p50 at most 2x one nginx answer (1 connection)", "<= 2.0x", http != nullptr,
        http ? Format("%.2fx (%.3f vs %.3f ms)", s.p50 / http->summary.p50, s.p50, http->summary.p50) : "",
        http && s.p50 <= 2 * http->summary.p50);
    add(fam + " warm p99 at most 4x its p50 (1 connection)", "<= 4.0x", true,
        Format("%.1fx (p99 %.3f ms)", s.p99 / s.p50, s.p99), s.p99 <= 4 * s.p50);
    const SweepPoint* most = nullptr;
    const SweepPoint* floor_most = nullptr;
    for (const auto& p : r.sweep) {
      if (p.family == fam && p.kind == "warm" && (!most || p.clients > most->clients)) most = &p;
    }
    for (const auto& p : r.sweep)
      if (most && p.family == "http floor" && p.clients == most->clients) floor_most = &p;
    if (most && most->clients > 1) {
      add(fam + " warm p99 at most 4x its p50 (" + std::to_string(most->clients) + " connections)", "<= 4.0x",
          true, Format("%.1fx (p50 %.3f, p99 %.3f ms)", most->latency.p99 / most->latency.p50,
                       most->latency.p50, most->latency.p99),
          most->latency.p99 <= 4 * most->latency.p50);
      add(fam + " warm p50 at most 2x nginx's (" + std::to_string(most->clients) + " connections)", "<= 2.0x",
          floor_most != nullptr,
          floor_most ? Format("%.2fx (%.3f vs %.3f ms)", most->latency.p50 / floor_most->latency.p50,
                              most->latency.p50, floor_most->latency.p50) : "",
          floor_most && most->latency.p50 <= 2 * floor_most->latency.p50);
    }
  }
  add("idle warm instance PSS beyond its zygote", "<= 3.0 MB", r.memory.has_value(),
      r.memory ? Format("%.2f MB", r.memory->marginal_pss_mb) : "", r.memory && r.memory->marginal_pss_mb <= 3.0);
}

std::string FormatTable(const BenchResults& r) {
  std::string out;
  out += "forklet-bench: " + r.machine + "\n";
  out += "  " + r.config + "\n\n";
  out += Format("%-34s %6s %9s %9s %9s %9s %9s %10s %8s %8s %7s\n", "response time (ms)", "n", "p50",
                "p90", "p99", "p99.9", "max", "/python3-c", "/bwrap", "/floor", "/http");
  bool baselines_started = false;
  for (const auto& row : r.rows) {
    if (row.baseline && !baselines_started) {
      out += "baselines (same handler, same timing: spawn to exit):\n";
      baselines_started = true;
    }
    const Summary& s = row.summary;
    const bool warm = row.name.size() > 5 && row.name.compare(row.name.size() - 5, 5, " warm") == 0;
    out += Format("  %-32s %6zu %9.3f %9.3f %9.3f %9.3f %9.3f %10s %8s %8s %7s\n", row.name.c_str(), s.n,
                  s.p50, s.p90, s.p99, s.p999, s.max, RatioCell(Ratio(r, row, kPythonBaseline)).c_str(),
                  RatioCell(Ratio(r, row, kBwrapBaseline)).c_str(),
                  RatioCell(Ratio(r, row, kFloorBaseline)).c_str(),
                  warm ? RatioCell(Ratio(r, row, kHttpFloorBaseline)).c_str() : "");
  }
  out += "  (ratios: p50 over the baseline's p50; /http for warm rows: over one nginx answer's)\n";
  for (const auto& row : r.rows)
    if (!row.what.empty()) out += Format("  %-32s %s\n", row.name.c_str(), row.what.c_str());
  out += "\n" + StageTable(r);
  if (!r.sweep.empty()) {
    out += Format("\n%-22s %7s %9s %7s %10s %9s %9s %9s %9s %9s %8s\n", "concurrency sweep", "clients",
                  "requests", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "p99/p50");
    for (const auto& p : r.sweep)
      out += Format("  %-20s %7d %9zu %7zu %10.0f %9.3f %9.3f %9.3f %9.3f %9.3f %7.1fx\n",
                    (p.family + " " + (p.kind == "zygote" ? "new sandbox" : p.kind)).c_str(), p.clients,
                    p.requests, p.errors, p.throughput, p.latency.p50, p.latency.p90, p.latency.p99,
                    p.latency.p999, p.latency.max, p.latency.p50 > 0 ? p.latency.p99 / p.latency.p50 : 0.0);
    for (const auto& p : r.sweep)  // what a failed request was: a bench's errors are never silent
      if (p.errors > 0)
        out += Format("  %s %s x%d, first error: %s\n", p.family.c_str(), p.kind.c_str(), p.clients,
                      p.first_error.substr(0, 300).c_str());
  }
  if (r.memory) {
    const auto& m = *r.memory;
    out += Format("\nidle warm instance memory (%d functions, one idle instance each; each function has its own zygote):\n", m.instances);
    out += Format("  a bound zygote alone:  RSS %6.2f MB  PSS %6.2f MB\n", m.zygote_alone.rss_mb, m.zygote_alone.pss_mb);
    out += Format("  with its instance:     RSS %6.2f MB  PSS %6.2f MB\n", m.zygote_with.rss_mb, m.zygote_with.pss_mb);
    out += Format("  one idle instance:     RSS %6.2f MB  PSS %6.2f MB  private %6.2f MB\n", m.instance.rss_mb,
                  m.instance.pss_mb, m.instance.private_mb);
    out += Format("  PSS each instance adds (sum over zygotes and instances, minus the zygotes alone): %.2f MB\n",
                  m.marginal_pss_mb);
  } else if (!r.memory_error.empty()) {
    out += "\nidle warm instance memory: not measured: " + r.memory_error + "\n";
  }
  for (const auto& s : r.stem_cells)
    out += Format("%s stem cell (pre-booted, no function yet): RSS %6.2f MB  PSS %6.2f MB  anonymous %6.2f MB\n"
                  "  (Node's text is file-backed: shared by every Node process of the host; the anonymous part is its own)\n",
                  s.family.c_str(), s.cell.rss_mb, s.cell.pss_mb, s.cell.anonymous_mb);
  if (!r.warm_path.empty()) {  // the daemon's side of the warm rows, stage by stage
    out += Format("\n%-26s", "warm path in the daemon");
    for (const auto& [runtime, stages] : r.warm_path.items()) out += Format(" %20s", runtime.c_str());
    out += Format("\n%-26s", "  (us, p50 / p99)");
    for (const auto& [runtime, stages] : r.warm_path.items())
      out += Format(" %20s", ("n " + std::to_string(stages.empty() ? 0 : stages[0].value("n", 0))).c_str());
    out += "\n";
    const json& first = r.warm_path.begin().value();
    for (size_t i = 0; i < first.size(); ++i) {
      out += Format("  %-24s", first[i].value("stage", "").c_str());
      for (const auto& [runtime, stages] : r.warm_path.items())
        out += i < stages.size() ? Format(" %9.1f / %8.1f", stages[i].value("p50_us", 0.0), stages[i].value("p99_us", 0.0))
                                 : Format(" %20s", "-");
      out += "\n";
    }
    out += "  (parse: the request to the API's form; route: the Lambda API to the scheduler; admit: an idle\n"
           "   instance taken and thawed; channel_out: the invocation frame written; runner: the handler and\n"
           "   the runner until its result is read; bill: release, ledger, metrics, REPORT; respond: the\n"
           "   answer built and written)\n";
  }
  if (!r.bars.empty()) {
    out += Format("\n%-60s %-34s %-11s %s\n", "bars (issue 4: the python3 function)", "measured", "target", "verdict");
    for (const auto& b : r.bars)
      out += Format("  %-58s %-34s %-11s %s\n", b.bar.c_str(), b.measured.c_str(), b.target.c_str(),
                    !b.met ? "-" : *b.met ? "MET" : "MISSED");
  }
  return out;
}

Status WriteJson(const BenchResults& r, const std::string& path) {
  json j;
  j["machine"] = r.machine;
  j["config"] = r.config;
  j["latency_ms"] = json::object();
  j["summary_ms"] = json::object();
  j["rows"] = json::array();
  for (const auto& row : r.rows) {
    j["rows"].push_back({{"name", row.name}, {"baseline", row.baseline}, {"what", row.what}});
    j["latency_ms"][row.name] = row.ms;
    json s = SummaryJson(row.summary);
    for (auto [key, name] : {std::pair{"vs_python3_c", kPythonBaseline}, {"vs_bwrap", kBwrapBaseline},
                             {"vs_clone_floor", kFloorBaseline}}) {
      double v = Ratio(r, row, name);
      if (!std::isnan(v)) s[key] = v;
    }
    j["summary_ms"][row.name] = s;
  }
  j["stages_ms"] = json::object();
  for (const auto& run : r.runs) {
    json st = json::array();
    for (const auto& n : run.stage_order) st.push_back({n, Median(run.stages.at(n))});
    j["stages_ms"][run.family + " " + run.kind] = st;  // as the rows are named
    j["off_kind_responses"][run.family + " " + run.kind] = run.off_kind;
  }
  j["warm_path"] = r.warm_path;
  j["sweep"] = json::array();
  for (const auto& p : r.sweep)
    j["sweep"].push_back({{"family", p.family}, {"kind", p.kind}, {"clients", p.clients}, {"requests", p.requests},
                          {"errors", p.errors}, {"first_error", p.first_error}, {"seconds", p.seconds}, {"throughput_per_s", p.throughput},
                          {"latency_ms", SummaryJson(p.latency)}});
  if (r.memory) {
    auto roll = [](const Rollup& x) { return json{{"rss_mb", x.rss_mb}, {"pss_mb", x.pss_mb}, {"private_mb", x.private_mb}}; };
    j["memory"] = {{"instances", r.memory->instances}, {"zygote_alone", roll(r.memory->zygote_alone)},
                   {"zygote_with_instances", roll(r.memory->zygote_with)}, {"idle_instance", roll(r.memory->instance)},
                   {"marginal_pss_mb", r.memory->marginal_pss_mb}};
  }
  for (const auto& s : r.stem_cells)
    j["stem_cell_memory"][s.family] = {{"rss_mb", s.cell.rss_mb}, {"pss_mb", s.cell.pss_mb},
                                       {"private_mb", s.cell.private_mb}, {"anonymous_mb", s.cell.anonymous_mb}};
  j["bars"] = json::array();
  for (const auto& b : r.bars)
    j["bars"].push_back({{"bar", b.bar}, {"measured", b.measured}, {"target", b.target},
                         {"met", b.met ? json(*b.met) : json()}});
  std::ofstream f(path);
  f << j.dump(1) << "\n";
  if (!f) return SysError("write " + path);
  return {};
}

Status WriteCsv(const BenchResults& r, const std::string& path) {
  std::ofstream f(path);
  f << "section,name,clients,n,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,mean_ms,throughput_per_s,"
       "p50_vs_python3_c,p50_vs_bwrap,p50_vs_clone_floor\n";
  auto num = [](double v) { return std::isnan(v) ? std::string() : Format("%.6g", v); };
  for (const auto& row : r.rows) {
    const Summary& s = row.summary;
    f << (row.baseline ? "baseline" : "forklet") << ",\"" << row.name << "\",1," << s.n << ","
      << num(s.p50) << "," << num(s.p90) << "," << num(s.p99) << "," << num(s.p999) << "," << num(s.max)
      << "," << num(s.mean) << ",," << num(Ratio(r, row, kPythonBaseline)) << "," << num(Ratio(r, row, kBwrapBaseline)) << ","
      << num(Ratio(r, row, kFloorBaseline)) << "\n";
  }
  for (const auto& p : r.sweep) {
    const Summary& s = p.latency;
    f << "sweep,\"" << p.family << " " << p.kind << "\"," << p.clients << "," << s.n << "," << num(s.p50) << "," << num(s.p90)
      << "," << num(s.p99) << "," << num(s.p999) << "," << num(s.max) << "," << num(s.mean) << ","
      << num(p.throughput) << ",,,\n";
  }
  if (!f) return SysError("write " + path);
  return {};
}

}  // namespace forklet::bench
