// How a request names a function: a name, a partial or full ARN, and a qualifier.
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::api {

struct FunctionRef {
  std::string name;       // as the caller knows it (no account)
  std::string key;        // the function's key in the registry (function_key.h)
  std::string qualifier;  // empty: none. From the ARN (":f:7") or ?Qualifier=
  // Names nothing this caller may see: an ARN of another account than the caller's, or a name no
  // function can have. Such a function is "not found", never "forbidden" (its existence is not
  // told).
  bool foreign = false;
  std::string shown;      // the ARN as a not-found message names it
};

// "NAME", "NAME:QUALIFIER", "ACCOUNT:function:NAME[:QUALIFIER]" or
// "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"; query_qualifier is ?Qualifier=.
// A qualifier in both that differ is InvalidParameterValueException (as Lambda says it).
// caller_account: the tenant who asks (HttpRequest::account); a bare name is of its account.
// Empty: the operator, whose bare names are of the default account and whose ARNs reach any.
Result<FunctionRef> ParseFunctionRef(const std::string& id, const std::string& query_qualifier = {},
                                     const std::string& caller_account = {});

}  // namespace forklet::api
