// The execution environment of Lambda's own runtimes: the INIT message an instance gets (its
// reserved variables, the function's variables, its context fields).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/registry/function.h"

namespace forklet::core {

// Lambda's log stream name of one instance: "YYYY/MM/DD/[VERSION]" and 32 random hex digits.
std::string NewLogStreamName(const std::string& version);

// The INIT message for one instance of cfg running `version` ("$LATEST" or "1", "2", ...):
// function, handler, memory_mb, timeout_s, arn (qualified for a published version), version,
// log_group, log_stream, convention, and env: the function's variables under the reserved ones
// Lambda documents for its runtimes (AWS_LAMBDA_FUNCTION_*, AWS_LAMBDA_LOG_*, AWS_REGION,
// AWS_EXECUTION_ENV, _HANDLER, LAMBDA_TASK_ROOT, ...) and the defaults a function may override
// (PATH, LANG, TZ, LD_LIBRARY_PATH).
nlohmann::json InitMessage(const registry::FunctionConfig& cfg, const std::string& version = "$LATEST");

}  // namespace forklet::core
