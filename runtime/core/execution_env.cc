// Reserved environment variables and context fields, as Lambda's runtimes set them.
#include "runtime/core/execution_env.h"

#include <cstdio>
#include <ctime>

#include "runtime/core/random_id.h"
#include "runtime/registry/function_key.h"

namespace forklet::core {

std::string NewLogStreamName(const std::string& version) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char day[16];
  strftime(day, sizeof(day), "%Y/%m/%d", &tm);
  return std::string(day) + "/[" + version + "]" + RandomHex(16);
}

nlohmann::json InitMessage(const registry::FunctionConfig& cfg, const std::string& version) {
  const std::string family = registry::RuntimeFamily(cfg.runtime);
  const std::string name = registry::NameOf(cfg.name);  // as its account knows it, not the key
  const std::string log_group = "/aws/lambda/" + name;
  const std::string log_stream = NewLogStreamName(version);
  const std::string arn = registry::QualifiedArn(cfg.name, version == "$LATEST" ? "" : version);
  nlohmann::json env = cfg.environment;
  env["AWS_LAMBDA_FUNCTION_NAME"] = name;
  env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = std::to_string(cfg.memory_mb);
  env["AWS_LAMBDA_FUNCTION_VERSION"] = version;
  env["AWS_LAMBDA_LOG_GROUP_NAME"] = log_group;
  env["AWS_LAMBDA_LOG_STREAM_NAME"] = log_stream;
  env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand";
  env["AWS_REGION"] = registry::kRegion;
  env["AWS_DEFAULT_REGION"] = registry::kRegion;
  // Lambda sets it for its managed runtimes only; a custom runtime (provided) has none.
  if (family != "provided" && family != "native") env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + cfg.runtime;
  env["LAMBDA_TASK_ROOT"] = "/var/task";
  env["LAMBDA_RUNTIME_DIR"] = "/var/runtime";
  env["_HANDLER"] = cfg.handler;
  // Defaults a function may set itself, as on Lambda (PATH, LANG, TZ, LD_LIBRARY_PATH are not
  // reserved there). AWS_LAMBDA_RUNTIME_API is a custom runtime's alone: the provided runner sets
  // it to its Runtime API's address (Lambda documents it for custom runtimes only). LANG is
  // C.UTF-8, not Lambda's en_US.UTF-8: the sandbox's /usr has no other locale, and a LANG naming a
  // missing one makes locale.setlocale(LC_ALL, "") fail.
  using Default = std::pair<const char*, const char*>;
  for (const auto& [key, value] :
       {Default{"PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin"}, Default{"LANG", "C.UTF-8"},
        Default{"TZ", ":UTC"}, Default{"HOME", "/tmp"},
        Default{"LD_LIBRARY_PATH",
                "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:"
                "/var/task/lib:/opt/lib"}})
    if (!env.contains(key)) env[key] = value;
  // Node.js resolves bare module names through NODE_PATH as on Lambda: a layer's
  // nodejs/node_modules (and nodejs/nodeNN/node_modules for the runtime's major), then the
  // runtime's own modules (the AWS SDK), then the function's.
  if (family == "nodejs" && !env.contains("NODE_PATH")) {
    std::string major;  // "22" of nodejs22.x
    for (char c : cfg.runtime.substr(6)) {
      if (c < '0' || c > '9') break;
      major += c;
    }
    env["NODE_PATH"] = (major.empty() ? "" : "/opt/nodejs/node" + major + "/node_modules:") +
                       "/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task";
  }
  return nlohmann::json{{"function", name},           {"handler", cfg.handler},
                        {"memory_mb", cfg.memory_mb}, {"timeout_s", cfg.timeout_s},
                        {"arn", arn},                 {"version", version},
                        {"log_group", log_group},     {"log_stream", log_stream},
                        {"env", env},                 {"convention", registry::HandlerConvention(cfg)}};
}

}  // namespace forklet::core
