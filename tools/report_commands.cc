// The CLI's reporting commands: `forklet bill` (usage and cost from the ledger) and
#include "tools/report_commands.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"

namespace forklet::tools {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int Fail(const std::string& m) {
  fprintf(stderr, "forklet: %s\n", m.c_str());
  return 1;
}

// Percent-encodes a query value.
std::string Encode(const std::string& v) {
  std::string out;
  char buf[4];
  for (unsigned char c : v) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// GET target; the body of a 200, else an error message in *error.
bool Get(const std::string& endpoint, const std::string& target, std::string* body,
         std::string* error) {
  auto r = api::HttpCall(endpoint, "GET", target);
  if (!r) {
    *error = r.error().ToString();
    return false;
  }
  if (r->status != 200) {
    auto j = json::parse(r->body, nullptr, false);
    *error = "HTTP " + std::to_string(r->status) + ": " +
             (j.is_object() ? j.value("message", r->body) : r->body);
    return false;
  }
  *body = std::move(r->body);
  return true;
}

std::string Ms(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), v >= 100 ? "%.1f" : v >= 10 ? "%.2f" : "%.3f", v);
  return buf;
}

// Snapshots: whether CRIU is there, and per function what auto decided and why.
std::string SnapshotLines(const json& snap) {
  if (!snap.is_object() || !snap.contains("criu")) return "";
  const json& criu = snap["criu"];
  std::string out = criu.value("available", false)
                        ? "snapshots: CRIU " + criu.value("version", std::string("?")) + " (self-test " +
                              criu.value("self_test", std::string("?")) + ")\n"
                        : "snapshots: off (" + criu.value("reason", std::string("no CRIU")) + ")\n";
  const json functions = snap.value("functions", json::object());  // outlives the loop's items()
  for (const auto& [name, f] : functions.items()) {
    std::string line = "  " + name + ": " +
                       (f.value("decision", std::string()).empty() ? std::string("no decision yet")
                                                                   : f.value("decision", std::string()));
    line += "; restores " + std::to_string(f.value("restores", 0)) + ", failures " +
            std::to_string(f.value("failures", 0));
    if (f.contains("size_bytes"))
      line += ", snapshot " + Ms(f["size_bytes"].get<double>() / (1 << 20)) + " MB";
    if (f.value("dumping", false)) line += ", dumping";
    if (f.contains("last_error")) line += "; last error: " + f["last_error"].get<std::string>();
    out += line + "\n";
  }
  return out;
}

// Event invocations: per function, the queue and what became of its events.
std::string EventLines(const json& events) {
  if (!events.is_object() || events.empty()) return "";
  std::string out = "events (asynchronous invocations):\n";
  for (const auto& [name, e] : events.items()) {
    std::string line = "  " + name + ": queued " + std::to_string(e.value("depth", 0)) + " (oldest " +
                       Ms(e.value("oldest_age_ms", 0) / 1000.0) + " s), running " +
                       std::to_string(e.value("in_flight", 0)) + "; received " +
                       std::to_string(e.value("received", 0)) + ", succeeded " +
                       std::to_string(e.value("succeeded", 0)) + ", retried " +
                       std::to_string(e.value("retried", 0)) + ", throttled " +
                       std::to_string(e.value("throttled", 0));
    if (e.value("recovered", 0) > 0) line += ", recovered at start " + std::to_string(e.value("recovered", 0));
    for (const auto& [reason, n] : e.value("dropped", json::object()).items())
      line += ", dropped " + reason + " " + std::to_string(n.get<uint64_t>());
    if (e.value("dead_letters", 0) > 0) line += "; dead letters " + std::to_string(e.value("dead_letters", 0));
    out += line + "\n";
  }
  return out;
}

std::string StatsTable(const json& stats) {
  std::vector<std::vector<std::string>> rows = {
      {"FUNCTION", "RUNTIME", "START", "COUNT", "P50_MS", "P90_MS", "P99_MS", "MAX_MS", "NOT_OK"}};
  std::vector<std::string> stage_lines;
  for (const auto& s : stats["series"]) {
    uint64_t not_ok = 0;
    for (const auto& [outcome, n] : s["outcomes"].items())
      if (outcome != "success") not_ok += n.get<uint64_t>();
    bool ran = s["count"].get<uint64_t>() > 0;
    rows.push_back({s["function"], s["runtime"], s["start_kind"], std::to_string(s["count"].get<uint64_t>()),
                    ran ? Ms(s["p50_ms"]) : "-", ran ? Ms(s["p90_ms"]) : "-",
                    ran ? Ms(s["p99_ms"]) : "-", ran ? Ms(s["max_ms"]) : "-", std::to_string(not_ok)});
    std::string stages;
    for (const auto& st : s["stages_p50_ms"])
      stages += " " + st["name"].get<std::string>() + "=" + Ms(st["p50_ms"]);
    std::string outcomes;
    for (const auto& [outcome, n] : s["outcomes"].items())
      if (outcome != "success") outcomes += " " + outcome + "=" + std::to_string(n.get<uint64_t>());
    stage_lines.push_back((stages.empty() ? "" : "    stages p50 ms:" + stages + "\n") +
                          (outcomes.empty() ? "" : "    not ok:" + outcomes + "\n"));
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out = "since " + stats.value("since", std::string("?")) +
                    " (latency inside the daemon, of invocations that ran to completion)\n";
  for (size_t n = 0; n < rows.size(); ++n) {
    std::string line;
    for (size_t i = 0; i < rows[n].size(); ++i) {
      std::string pad(width[i] - rows[n][i].size(), ' ');
      line += i < 3 ? rows[n][i] + pad : pad + rows[n][i];
      if (i + 1 < rows[n].size()) line += "  ";
    }
    out += line + "\n";
    if (n > 0) out += stage_lines[n - 1];
  }
  if (rows.size() == 1) out += "(no invocations yet)\n";
  out += EventLines(stats.value("events", json::object()));
  out += SnapshotLines(stats.value("snapshots", json::object()));
  return out;
}

// The plotting script: $FORKLET_STATS_PLOT, else installed next to the binary.
std::string PlotScript() {
  if (const char* e = getenv("FORKLET_STATS_PLOT"); e && *e) return e;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path base : {exe.parent_path(), exe.parent_path().parent_path()}) {
    fs::path p = base / "share/forklet/forklet_stats_plot.py";
    if (fs::exists(p, ec)) return p.string();
  }
  return "";
}

int Plot(const std::string& stats_json, const std::string& out) {
  std::string script = PlotScript();
  if (script.empty()) return Fail("forklet_stats_plot.py not found (set FORKLET_STATS_PLOT)");
  std::string input = "/tmp/forklet-stats-" + std::to_string(getpid()) + ".json";
  if (FILE* f = fopen(input.c_str(), "w")) {
    fwrite(stats_json.data(), 1, stats_json.size(), f);
    fclose(f);
  } else {
    return Fail("cannot write " + input);
  }
  pid_t pid = fork();
  if (pid == 0) {
    execl("/usr/bin/python3", "python3", script.c_str(), "--input", input.c_str(), out.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  unlink(input.c_str());
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Fail("plotting failed (" + script + ")");
  printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace

int BillCommand(const std::string& endpoint, const std::vector<std::string>& args) {
  std::map<std::string, std::string> q = {{"format", "table"}};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") q["format"] = "json";
    else if (a == "--csv") q["format"] = "csv";
    else if ((a == "--from" || a == "--to" || a == "--function") && i + 1 < args.size())
      q[a.substr(2)] = args[++i];
    else return Fail("bill: unexpected '" + a + "' (forklet --help)");
  }
  std::string target = "/forklet/v1/bill?";
  for (const auto& [k, v] : q) target += k + "=" + Encode(v) + "&";
  target.pop_back();
  std::string body, error;
  if (!Get(endpoint, target, &body, &error)) return Fail("bill: " + error);
  fputs(body.c_str(), stdout);
  return 0;
}

int StatsCommand(const std::string& endpoint, const std::vector<std::string>& args) {
  std::string function, plot;
  bool as_json = false;
  int watch = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") as_json = true;
    else if (a == "--function" && i + 1 < args.size()) function = args[++i];
    else if (a == "--plot" && i + 1 < args.size()) plot = args[++i];
    else if (a == "--watch") {
      watch = 2;
      if (i + 1 < args.size() && !args[i + 1].empty() && isdigit(static_cast<unsigned char>(args[i + 1][0])))
        watch = std::max(1, atoi(args[++i].c_str()));
    } else return Fail("stats: unexpected '" + a + "' (forklet --help)");
  }
  if (!plot.empty() && plot.size() < 5) return Fail("stats: --plot needs FILE.svg or FILE.png");
  std::string target = "/forklet/v1/stats";
  std::string sep = "?";
  if (!function.empty()) {
    target += sep + "function=" + Encode(function);
    sep = "&";
  }
  if (!plot.empty()) target += sep + "histogram=1";
  for (;;) {
    std::string body, error;
    if (!Get(endpoint, target, &body, &error)) return Fail("stats: " + error);
    if (!plot.empty()) return Plot(body, plot);
    auto j = json::parse(body, nullptr, false);
    if (!j.is_object()) return Fail("stats: the daemon's answer is not JSON");
    std::string text = as_json ? j.dump(1) + "\n" : StatsTable(j);
    if (!watch) {
      fputs(text.c_str(), stdout);
      return 0;
    }
    printf("\033[H\033[2J%s", text.c_str());  // redraw in place until interrupted
    fflush(stdout);
    sleep(static_cast<unsigned>(watch));
  }
}

}  // namespace forklet::tools
