// Fuzzes the JSON bodies the Lambda API accepts (CreateFunction, UpdateFunctionConfiguration,
// UpdateFunctionCode, PutFunctionConcurrency, Invoke) through LambdaApi::Handle over a real
// registry in a temp dir. The first byte picks the route, the rest is the body. Malformed input
// gets a 4xx with a message, never a 5xx, and never a crash.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/lambda_api.h"
#include "runtime/core/scheduler.h"
#include "runtime/registry/code_archive.h"
#include "runtime/registry/registry.h"
#include "runtime/registry/registry_test_util.h"
#include "tests/fuzz/fuzz_util.h"

namespace forklet::fuzz {
const char* const kTarget = "json_body_fuzz";
}  // namespace forklet::fuzz

namespace {
using forklet::fuzz::Fail;
using forklet::fuzz::TempDir;
using namespace forklet;
using nlohmann::json;

struct Api {
  std::string dir;
  std::unique_ptr<registry::Registry> registry;
  std::unique_ptr<core::Scheduler> scheduler;  // no launcher: no route here starts an instance
  std::unique_ptr<api::LambdaApi> lambda;
  Api() {
    dir = TempDir("json");
    auto r = registry::Registry::Open(dir);
    if (!r) Fail(r.error().ToString());
    registry = std::move(r.value());
    scheduler = std::make_unique<core::Scheduler>(core::SchedulerOptions{}, nullptr);
    lambda = std::make_unique<api::LambdaApi>(registry.get(), scheduler.get(), nullptr);
    // The function the update routes change.
    json create{{"FunctionName", "existing"}, {"Runtime", "python3.11"}, {"Handler", "app.handler"},
                {"Role", "arn:aws:iam::000000000000:role/x"},
                {"Code", {{"ZipFile", registry::Base64Encode(registry::testing::SimpleZip())}}}};
    if (Handle("POST", "/2015-03-31/functions", create.dump()).status != 201) Fail("setup create");
  }
  api::HttpResponse Handle(const std::string& method, const std::string& path, std::string body,
                           const std::map<std::string, std::string>& headers = {}) {
    api::HttpRequest r;
    r.method = method;
    r.target = r.path = path;
    r.headers = headers;
    r.body = std::move(body);
    return lambda->Handle(r);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Api* api = new Api;  // lives for the whole run
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  api::HttpResponse r;
  switch (data[0] % 5) {
    case 0:
      r = api->Handle("POST", "/2015-03-31/functions", body);
      if (r.status == 201) {  // a valid function after all: keep the state small
        auto name = json::parse(r.body)["FunctionName"].get<std::string>();
        api->Handle("DELETE", "/2015-03-31/functions/" + name, "");
      }
      break;
    case 1:
      r = api->Handle("PUT", "/2015-03-31/functions/existing/configuration", body);
      break;
    case 2:
      r = api->Handle("PUT", "/2015-03-31/functions/existing/code", body);
      break;
    case 3:
      r = api->Handle("PUT", "/2017-10-31/functions/existing/concurrency", body);
      break;
    default:
      r = api->Handle("POST", "/2015-03-31/functions/existing/invocations", body,
                      {{"x-amz-invocation-type", "DryRun"}});
      break;
  }
  if (r.status >= 500) Fail("a server error for client input: " + r.body);
  if (r.status >= 400) {
    auto e = json::parse(r.body, nullptr, false);
    if (!e.is_object() || !e.contains("message") || !e["message"].is_string() ||
        e["message"].get<std::string>().empty() || !r.headers.count("X-Amzn-ErrorType"))
      Fail("an error without a clear message: " + r.body);
  }
  return 0;
}
