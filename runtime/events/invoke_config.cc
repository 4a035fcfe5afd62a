// Event invoke configurations: validation, Lambda's JSON, one file per function.
#include "runtime/events/invoke_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "runtime/log/log.h"
#include "runtime/registry/durable_fs.h"
#include "runtime/registry/function.h"
#include "runtime/registry/function_key.h"

namespace forklet::events {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Error Invalid(const std::string& message) {
  return Error{"InvalidParameterValueException", 0, message};
}

json Destinations(const InvokeConfig& c) {
  json d = json::object();
  d["OnSuccess"] = c.on_success.empty() ? json::object() : json{{"Destination", c.on_success}};
  d["OnFailure"] = c.on_failure.empty() ? json::object() : json{{"Destination", c.on_failure}};
  return d;
}

json StoredJson(const InvokeConfig& c) {
  return json{{"MaximumRetryAttempts", c.max_retry_attempts},
              {"MaximumEventAgeInSeconds", c.max_event_age_s},
              {"DestinationConfig", Destinations(c)},
              {"LastModified", c.last_modified}};
}

// Applies the fields present in body to c, with Lambda's ranges and messages.
Status Apply(const json& body, InvokeConfig* c, const std::string& owner = {}) {
  if (body.contains("MaximumRetryAttempts")) {
    const json& v = body["MaximumRetryAttempts"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 2)
      return Invalid("1 validation error detected: Value at 'maximumRetryAttempts' failed to satisfy "
                     "constraint: Member must have value less than or equal to 2 and greater than "
                     "or equal to 0");
    c->max_retry_attempts = v.get<uint32_t>();
  }
  if (body.contains("MaximumEventAgeInSeconds")) {
    const json& v = body["MaximumEventAgeInSeconds"];
    if (!v.is_number_integer() || v.get<int64_t>() < 60 || v.get<int64_t>() > 21600)
      return Invalid("1 validation error detected: Value at 'maximumEventAgeInSeconds' failed to "
                     "satisfy constraint: Member must have value less than or equal to 21600 and "
                     "greater than or equal to 60");
    c->max_event_age_s = v.get<uint32_t>();
  }
  if (body.contains("DestinationConfig")) {
    const json& d = body["DestinationConfig"];
    if (!d.is_object()) return Invalid("DestinationConfig must be an object");
    for (const char* which : {"OnSuccess", "OnFailure"}) {
      if (!d.contains(which)) continue;
      std::string* target = std::string(which) == "OnSuccess" ? &c->on_success : &c->on_failure;
      const json& w = d[which];
      if (!w.is_object()) return Invalid(std::string("DestinationConfig.") + which + " must be an object");
      if (!w.contains("Destination") || w["Destination"].is_null()) {
        target->clear();
        continue;
      }
      if (!w["Destination"].is_string()) return Invalid(std::string(which) + ".Destination must be an ARN");
      std::string arn = w["Destination"].get<std::string>();
      if (arn.empty()) {
        target->clear();
        continue;
      }
      if (DestinationFunction(arn).empty())
        return Invalid("The destination ARN " + arn +
                       " is not supported: forklet sends destination records only to Lambda "
                       "functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME)");
      if (DestinationFunction(arn, owner).empty())
        return Invalid("The destination ARN " + arn + " is not a function of account " +
                       registry::AccountOf(owner) + ": records go to the same account only");
      *target = arn;
    }
  }
  return {};
}

bool CleanFunctionName(const std::string& n) {
  if (n.empty() || n.size() > 140) return false;
  for (char ch : n)
    if (!isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') return false;
  return true;
}

}  // namespace

std::string DestinationFunction(const std::string& arn, const std::string& owner) {
  if (arn.rfind("arn:aws:lambda:", 0) != 0) return "";
  auto pos = arn.find(":function:");
  if (pos == std::string::npos) return "";
  std::string rest = arn.substr(pos + 10);
  auto colon = rest.find(':');
  std::string name = colon == std::string::npos ? rest : rest.substr(0, colon);
  // arn:aws:lambda:REGION:ACCOUNT: the account is the fifth field.
  std::string head = arn.substr(0, pos);
  std::string account = head.substr(head.rfind(':') + 1);
  if (!CleanFunctionName(name) || !registry::ValidAccountId(account)) return "";
  if (!owner.empty() && registry::AccountOf(owner) != account) return "";
  return registry::FunctionKey(account, name);
}

json ToLambdaJson(const std::string& function, const InvokeConfig& c) {
  json j = StoredJson(c);
  j["FunctionArn"] = registry::FunctionArn(function) + ":$LATEST";
  return j;
}

Status InvokeConfigStore::Load() {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return {};
  std::lock_guard lock(mu_);
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string file = e.path().filename().string();
    if (file.size() < 6 || file.substr(file.size() - 5) != ".json") continue;
    std::string name = file.substr(0, file.size() - 5);
    auto text = registry::ReadSmallFile(e.path().string(), 64 * 1024);
    json j = text ? json::parse(*text, nullptr, false) : json();
    InvokeConfig c;
    if (!j.is_object() || !Apply(j, &c)) {
      log::Warning("events: ignoring unreadable " + e.path().string());
      continue;
    }
    c.last_modified = j.value("LastModified", 0.0);
    configs_[name] = c;
  }
  if (ec) return SysError("events: list " + dir_, ec.value());
  return {};
}

InvokeConfig InvokeConfigStore::Effective(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = configs_.find(function);
  return it == configs_.end() ? InvokeConfig{} : it->second;
}

std::optional<InvokeConfig> InvokeConfigStore::Get(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = configs_.find(function);
  if (it == configs_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, InvokeConfig>> InvokeConfigStore::List() {
  std::lock_guard lock(mu_);
  return {configs_.begin(), configs_.end()};
}

Result<InvokeConfig> InvokeConfigStore::Put(const std::string& function, const json& body, bool update) {
  std::lock_guard lock(mu_);
  auto it = configs_.find(function);
  InvokeConfig c = update && it != configs_.end() ? it->second : InvokeConfig{};
  if (auto s = Apply(body, &c, function); !s) return s.error();
  c.last_modified = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  struct stat st {};
  if (stat(dir_.c_str(), &st) != 0) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return registry::StorageError("mkdir " + dir_, ec.value());
  }
  if (auto s = registry::WriteFileAtomic(dir_, function + ".json", StoredJson(c).dump()); !s)
    return s.error();
  configs_[function] = c;
  return c;
}

Status InvokeConfigStore::Delete(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = configs_.find(function);
  if (it == configs_.end())
    return Error{"ResourceNotFoundException", 0,
                 "The function " + registry::FunctionArn(function) + " doesn't have an EventInvokeConfig"};
  std::string path = dir_ + "/" + function + ".json";
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return registry::StorageError("unlink " + path, errno);
  configs_.erase(it);
  return {};
}

}  // namespace forklet::events
