// forklet: the command line for a local forkletd (over its Unix socket by default).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "runtime/registry/code_archive.h"
#include "tools/report_commands.h"
#include "tools/zip_dir.h"

using nlohmann::json;
using namespace forklet;

namespace {

const char* kUsage = R"(usage: forklet [--endpoint unix:PATH|http://HOST:PORT] COMMAND ...
commands:
  deploy NAME DIR|ZIP [--handler MOD.FN] [--runtime RT] [--memory MB] [--timeout S] [--env K=V]...
                      create the function, or update its code and configuration
  invoke NAME [JSON|-] [--log] [--event]   run it; prints the response, timing on stderr
  list                                     deployed functions
  delete NAME
  drop-instances [NAME]                    tear down idle instances (next start: zygote)
  drop-zygote RUNTIME                      stop a runtime's zygote (next start: cold)
  health
  bill [--from T] [--to T] [--function F] [--json|--csv]
                      usage and cost per function; T: epoch ms, 2024-05-01[T12:00:00Z], now, -2h, -7d
  stats [--function F] [--json] [--watch [SECONDS]] [--plot FILE.svg|FILE.png]
                      latency per function, runtime and start kind, with the stage breakdown
  events [stats]                           Event invocations per function: queue depth, oldest
                                           age, received, retried, dropped by reason
  events dead-letters [NAME] [--json]      events that ended without success and had no
                                           OnFailure destination
  events redrive REQUEST_ID                queue a dead-letter event again (a new request id)
The endpoint defaults to $FORKLET_ENDPOINT, else unix:/run/forklet/forkletd.sock (the systemd
service's) when it exists, else unix:/var/lib/forklet/forkletd.sock.
)";

std::string endpoint;

[[noreturn]] void Fail(const std::string& m) {
  fprintf(stderr, "forklet: %s\n", m.c_str());
  exit(1);
}

api::HttpResponse Call(const std::string& method, const std::string& target,
                       const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {}) {
  auto r = api::HttpCall(endpoint, method, target, body, headers);
  if (!r) Fail(r.error().ToString());
  return std::move(r.value());
}

// Lambda API errors: {"message"} with the type in X-Amzn-ErrorType.
[[noreturn]] void FailWith(const api::HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string type = r.headers.count("x-amzn-errortype") ? r.headers.at("x-amzn-errortype") : "Error";
  std::string msg = j.is_object() ? j.value("message", r.body) : r.body;
  Fail(type + " (HTTP " + std::to_string(r.status) + "): " + msg);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int Deploy(std::vector<std::string> args) {
  if (args.size() < 2) Fail("deploy needs NAME and DIR|ZIP\n" + std::string(kUsage));
  std::string name = args[0], path = args[1];
  json cfg = json::object();
  json env = json::object();
  for (size_t i = 2; i < args.size(); ++i) {
    auto value = [&]() {
      if (i + 1 >= args.size()) Fail(args[i] + " needs a value");
      return args[++i];
    };
    const std::string& a = args[i];
    if (a == "--handler") cfg["Handler"] = value();
    else if (a == "--runtime") cfg["Runtime"] = value();
    else if (a == "--memory") cfg["MemorySize"] = std::atoi(value().c_str());
    else if (a == "--timeout") cfg["Timeout"] = std::atoi(value().c_str());
    else if (a == "--env") {
      std::string kv = value();
      auto eq = kv.find('=');
      if (eq == std::string::npos) Fail("--env expects K=V, got " + kv);
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else Fail("unknown deploy option " + a);
  }
  if (!env.empty()) cfg["Environment"] = {{"Variables", env}};
  std::string zip;
  if (path.size() > 4 && path.substr(path.size() - 4) == ".zip") {
    zip = ReadFile(path);
  } else {
    auto z = tools::ZipDirectory(path);
    if (!z) Fail(z.error().ToString());
    zip = std::move(z.value());
  }
  std::string code = registry::Base64Encode(zip);
  auto existing = Call("GET", "/2015-03-31/functions/" + name + "/configuration");
  if (existing.status == 404) {
    json body = cfg;
    body["FunctionName"] = name;
    if (!body.contains("Runtime")) body["Runtime"] = "python3.11";
    if (!body.contains("Handler")) body["Handler"] = "app.handler";
    body["Role"] = "arn:aws:iam::000000000000:role/forklet";
    body["Code"] = {{"ZipFile", code}};
    auto r = Call("POST", "/2015-03-31/functions", body.dump());
    if (r.status != 201) FailWith(r);
    printf("created %s (%s, %s)\n", name.c_str(), body["Runtime"].get<std::string>().c_str(),
           body["Handler"].get<std::string>().c_str());
    return 0;
  }
  if (existing.status != 200) FailWith(existing);
  auto r = Call("PUT", "/2015-03-31/functions/" + name + "/code", json{{"ZipFile", code}}.dump());
  if (r.status != 200) FailWith(r);
  if (!cfg.empty()) {
    r = Call("PUT", "/2015-03-31/functions/" + name + "/configuration", cfg.dump());
    if (r.status != 200) FailWith(r);
  }
  printf("updated %s\n", name.c_str());
  return 0;
}

int Invoke(std::vector<std::string> args) {
  if (args.empty()) Fail("invoke needs NAME");
  std::string payload;
  bool log = false, event = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--log") log = true;
    else if (args[i] == "--event") event = true;
    else if (args[i] == "-") payload = std::string(std::istreambuf_iterator<char>(std::cin), {});
    else payload = args[i];
  }
  std::map<std::string, std::string> h;
  if (log) h["X-Amz-Log-Type"] = "Tail";
  if (event) h["X-Amz-Invocation-Type"] = "Event";
  auto r = Call("POST", "/2015-03-31/functions/" + args[0] + "/invocations", payload, h);
  if (r.status >= 400) FailWith(r);
  if (event) {
    printf("queued (HTTP %d)\n", r.status);
    return 0;
  }
  printf("%s\n", r.body.c_str());
  auto hdr = [&](const char* k) { return r.headers.count(k) ? r.headers.at(k) : std::string("-"); };
  fprintf(stderr, "start=%s total=%sms billed=%sms outcome=%s\n", hdr("x-forklet-start-kind").c_str(),
          hdr("x-forklet-total-ms").c_str(), hdr("x-forklet-billed-ms").c_str(),
          hdr("x-forklet-outcome").c_str());
  if (log && r.headers.count("x-amz-log-result")) {
    auto text = registry::Base64Decode(r.headers.at("x-amz-log-result"));
    if (text) fprintf(stderr, "%s", text->c_str());
  }
  return r.headers.count("x-amz-function-error") ? 2 : 0;
}

int Events(std::vector<std::string> args) {
  std::string sub = args.empty() ? "stats" : args[0];
  if (sub == "stats") {
    auto r = Call("GET", "/forklet/v1/events");
    if (r.status != 200) FailWith(r);
    auto j = json::parse(r.body)["Functions"];
    printf("%-28s %7s %9s %7s %9s %9s %8s %9s  %s\n", "FUNCTION", "QUEUED", "OLDEST_S", "RUNNING",
           "RECEIVED", "SUCCEEDED", "RETRIED", "THROTTLED", "DROPPED");
    for (auto& [name, e] : j.items()) {
      std::string dropped;
      for (auto& [reason, n] : e["dropped"].items())
        dropped += (dropped.empty() ? "" : ",") + reason + "=" + std::to_string(n.get<uint64_t>());
      printf("%-28s %7llu %9.1f %7llu %9llu %9llu %8llu %9llu  %s\n", name.c_str(),
             e.value("depth", 0ULL), e.value("oldest_age_ms", 0) / 1000.0, e.value("in_flight", 0ULL),
             e.value("received", 0ULL), e.value("succeeded", 0ULL), e.value("retried", 0ULL),
             e.value("throttled", 0ULL), dropped.empty() ? "-" : dropped.c_str());
    }
    return 0;
  }
  if (sub == "dead-letters") {
    std::string fn;
    bool as_json = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--json") as_json = true;
      else fn = args[i];
    }
    auto r = Call("GET", "/forklet/v1/events/dead-letters" + (fn.empty() ? "" : "?function=" + fn));
    if (r.status != 200) FailWith(r);
    auto list = json::parse(r.body)["DeadLetters"];
    if (as_json) {
      printf("%s\n", list.dump(2).c_str());
      return 0;
    }
    printf("%-36s %-24s %-18s %8s  %s\n", "REQUEST_ID", "FUNCTION", "REASON", "ATTEMPTS", "PAYLOAD");
    for (auto& d : list) {
      std::string payload = d.value("Payload", "");
      if (payload.size() > 60) payload = payload.substr(0, 57) + "...";
      printf("%-36s %-24s %-18s %8d  %s\n", d.value("RequestId", "").c_str(),
             d.value("FunctionName", "").c_str(), d.value("Reason", "").c_str(),
             d.value("ApproximateInvokeCount", 0), payload.c_str());
    }
    return 0;
  }
  if (sub == "redrive") {
    if (args.size() < 2) Fail("events redrive needs REQUEST_ID");
    auto r = Call("POST", "/forklet/v1/events/dead-letters/" + args[1] + "/redrive");
    if (r.status != 202) FailWith(r);
    printf("queued again as %s\n", json::parse(r.body).value("NewRequestId", "").c_str());
    return 0;
  }
  Fail("unknown events command " + sub + "\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_ep = getenv("FORKLET_ENDPOINT");
  // The systemd unit puts the socket in /run/forklet; a daemon started by hand in its state dir.
  endpoint = env_ep && *env_ep ? env_ep
             : access("/run/forklet/forkletd.sock", F_OK) == 0 ? "unix:/run/forklet/forkletd.sock"
                                                                : "unix:/var/lib/forklet/forkletd.sock";
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args[0] == "--endpoint") {
    endpoint = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 1 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "deploy") return Deploy(args);
  if (cmd == "invoke") return Invoke(args);
  if (cmd == "bill") return tools::BillCommand(endpoint, args);
  if (cmd == "stats") return tools::StatsCommand(endpoint, args);
  if (cmd == "events") return Events(args);
  if (cmd == "list") {
    auto r = Call("GET", "/2015-03-31/functions/");
    if (r.status != 200) FailWith(r);
    auto j = json::parse(r.body);
    printf("%-32s %-12s %-24s %8s %8s  %s\n", "NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT", "ACCOUNT");
    for (auto& f : j["Functions"]) {
      // arn:aws:lambda:REGION:ACCOUNT:function:NAME: the tenant the function belongs to
      std::string arn = f.value("FunctionArn", "");
      size_t region_end = arn.size() > 15 ? arn.find(':', 15) : std::string::npos;
      std::string account = region_end == std::string::npos
                                ? ""
                                : arn.substr(region_end + 1, arn.find(':', region_end + 1) - region_end - 1);
      printf("%-32s %-12s %-24s %6dMB %7ds  %s\n", f.value("FunctionName", "").c_str(),
             f.value("Runtime", "").c_str(), f.value("Handler", "").c_str(), f.value("MemorySize", 0),
             f.value("Timeout", 0), account.c_str());
    }
    return 0;
  }
  if (cmd == "delete") {
    if (args.empty()) Fail("delete needs NAME");
    auto r = Call("DELETE", "/2015-03-31/functions/" + args[0]);
    if (r.status != 204) FailWith(r);
    printf("deleted %s\n", args[0].c_str());
    return 0;
  }
  if (cmd == "drop-instances" || cmd == "drop-zygote" || cmd == "health") {
    api::HttpResponse r;
    if (cmd == "health") r = Call("GET", "/forklet/v1/health");
    else if (cmd == "drop-zygote") {
      if (args.empty()) Fail("drop-zygote needs RUNTIME (e.g. python3)");
      r = Call("POST", "/forklet/v1/admin/zygotes/" + args[0] + "/drop");
    } else {
      r = Call("POST", "/forklet/v1/admin/instances/drop" + (args.empty() ? "" : "?function=" + args[0]));
    }
    if (r.status != 200) FailWith(r);
    printf("%s\n", json::parse(r.body).dump(2).c_str());
    return 0;
  }
  Fail("unknown command " + cmd + "\n" + kUsage);
}
