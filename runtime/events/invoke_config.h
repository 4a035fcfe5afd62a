// Lambda's asynchronous invocation configuration of a function (PutFunctionEventInvokeConfig):
// retries, maximum event age and destinations; validated in Lambda's words and kept in
// STATE_DIR/events/config/NAME.json (written atomically), so it persists with the function.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/error.h"

namespace forklet::events {

struct InvokeConfig {
  uint32_t max_retry_attempts = 2;     // Lambda's default
  uint32_t max_event_age_s = 21600;    // 6 hours
  std::string on_success;              // a Lambda function ARN, or empty
  std::string on_failure;
  double last_modified = 0;            // epoch seconds
};

// The function (its key, registry/function_key.h) a destination ARN names
// ("arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUAL]"); empty when it is not a Lambda function
// ARN, or when `owner` (the key of the function whose events go there) is given and of another
// account: records never cross from one tenant to another.
std::string DestinationFunction(const std::string& arn, const std::string& owner = {});

// Lambda's response shape for one function's configuration.
nlohmann::json ToLambdaJson(const std::string& function, const InvokeConfig& c);

class InvokeConfigStore {
 public:
  explicit InvokeConfigStore(std::string dir) : dir_(std::move(dir)) {}
  Status Load();  // reads every NAME.json below dir (missing dir: none)

  // The function's configuration, or Lambda's defaults when it has none.
  InvokeConfig Effective(const std::string& function);
  std::optional<InvokeConfig> Get(const std::string& function);
  std::vector<std::pair<std::string, InvokeConfig>> List();
  // Put replaces (fields left out take their defaults); Update changes only those given.
  // Errors carry the Lambda exception in op (InvalidParameterValueException, ...).
  Result<InvokeConfig> Put(const std::string& function, const nlohmann::json& body, bool update);
  Status Delete(const std::string& function);  // ResourceNotFoundException when none

 private:
  std::string dir_;
  std::mutex mu_;
  std::map<std::string, InvokeConfig> configs_;
};

}  // namespace forklet::events
