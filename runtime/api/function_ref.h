// How a request names a function: a name, a partial or full ARN, and a qualifier.
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::api {

struct FunctionRef {
  std::string name;
  std::string qualifier;  // empty: none. From the ARN (":f:7") or ?Qualifier=
  bool foreign = false;   // an ARN of another account: not a function of this daemon
  std::string shown;      // the ARN as a not-found message names it
};

// "NAME", "NAME:QUALIFIER", "ACCOUNT:function:NAME[:QUALIFIER]" or
// "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"; query_qualifier is ?Qualifier=.
// A qualifier in both that differ is InvalidParameterValueException (as Lambda says it).
Result<FunctionRef> ParseFunctionRef(const std::string& id, const std::string& query_qualifier = {});

}  // namespace forklet::api
