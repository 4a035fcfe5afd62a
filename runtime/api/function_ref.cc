// Function names, partial and full ARNs, and qualifiers in request paths.
#include "runtime/api/function_ref.h"

#include <vector>

#include "runtime/registry/function.h"
#include "runtime/registry/function_key.h"

namespace forklet::api {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

}  // namespace

Result<FunctionRef> ParseFunctionRef(const std::string& id, const std::string& query_qualifier,
                                     const std::string& caller_account) {
  FunctionRef ref;
  std::vector<std::string> p = Split(id, ':');
  std::string account;
  size_t name_at = 0;
  if (p.size() >= 7 && p[0] == "arn" && p[2] == "lambda" && p[5] == "function") {
    account = p[4];
    name_at = 6;
  } else if (p.size() >= 3 && p[1] == "function") {
    account = p[0];
    name_at = 2;
  }
  if (p.size() > name_at + 2) {  // not a form Lambda knows: a name that matches nothing
    ref.name = id;
  } else {
    ref.name = p[name_at];
    if (p.size() == name_at + 2) ref.qualifier = p[name_at + 1];
  }
  if (!query_qualifier.empty()) {
    if (!ref.qualifier.empty() && ref.qualifier != query_qualifier)
      return Error{"InvalidParameterValueException", 0,
                   "The derived qualifier from the function name does not match the specified "
                   "qualifier."};
    ref.qualifier = query_qualifier;
  }
  const std::string own = caller_account.empty() ? registry::kDefaultAccount : caller_account;
  if (account.empty()) account = own;
  ref.foreign = (!caller_account.empty() && account != caller_account) ||
                !registry::ValidAccountId(account) || !registry::ValidateName(ref.name);
  ref.key = ref.foreign ? "" : registry::FunctionKey(account, ref.name);
  ref.shown = ref.foreign ? id : registry::FunctionArn(ref.key);
  if (!ref.foreign && !ref.qualifier.empty()) ref.shown += ":" + ref.qualifier;
  return ref;
}

}  // namespace forklet::api
