// A function's configuration as the Lambda API knows it, and its validation.
#include "runtime/registry/function.h"

#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <limits>
#include <regex>
#include <string_view>
#include <vector>

#include "runtime/registry/function_key.h"

namespace forklet::registry {
namespace {

using nlohmann::json;

constexpr const char* kInvalid = "InvalidParameterValueException";
constexpr size_t kMaxHandler = 128;
constexpr size_t kMaxDescription = 256;
constexpr size_t kMaxEnvironmentBytes = 4096;

struct RuntimeName {
  const char* name;
  const char* family;
};
constexpr std::array<RuntimeName, 15> kRuntimes{{
    {"python3", "python3"},     {"python3.8", "python3"},   {"python3.9", "python3"},
    {"python3.10", "python3"},  {"python3.11", "python3"},  {"python3.12", "python3"},
    {"python3.13", "python3"},  {"nodejs", "nodejs"},       {"nodejs18.x", "nodejs"},
    {"nodejs20.x", "nodejs"},   {"nodejs22.x", "nodejs"},   {"native", "native"},
    {"provided", "provided"},   {"provided.al2", "provided"}, {"provided.al2023", "provided"},
}};

// Variables the runtime sets itself; Lambda refuses to let a function override them.
constexpr std::array<const char*, 18> kReservedEnv{
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
};

constexpr std::array<const char*, 3> kConventions{"lambda", "openwhisk", "stdin"};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// User input echoed in a message is cut short so a huge value cannot make a huge error.
std::string Shown(std::string_view v) {
  constexpr size_t kMax = 100;
  if (v.size() <= kMax) return std::string(v);
  return std::string(v.substr(0, kMax)) + "...";
}

// Lambda's "N validation error(s) detected: Value 'v' at 'field' failed to satisfy constraint: ..."
class Violations {
 public:
  void Add(std::string_view value, const std::string& field, const std::string& constraint) {
    items_.push_back("Value '" + Shown(value) + "' at '" + field +
                     "' failed to satisfy constraint: " + constraint);
  }
  bool empty() const { return items_.empty(); }
  Error ToError() const {
    std::string m = std::to_string(items_.size()) +
                    (items_.size() == 1 ? " validation error detected: " : " validation errors detected: ");
    for (size_t i = 0; i < items_.size(); ++i) m += (i ? "; " : "") + items_[i];
    return Error{kInvalid, 0, m};
  }

 private:
  std::vector<std::string> items_;
};

void CheckName(const std::string& name, Violations& v) {
  if (name.empty()) {
    v.Add(name, "functionName", "Member must have length greater than or equal to 1");
    return;
  }
  if (name.size() > 64) {
    v.Add(name, "functionName", "Member must have length less than or equal to 64");
    return;
  }
  for (char c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != '-') {
      v.Add(name, "functionName",
            "Member must satisfy regular expression pattern: [A-Za-z0-9_-]{1,64}");
      return;
    }
  }
}

void CheckRange(uint64_t value, uint64_t min, uint64_t max, const std::string& field,
                Violations& v) {
  if (value < min)
    v.Add(std::to_string(value), field,
          "Member must have value greater than or equal to " + std::to_string(min));
  else if (value > max)
    v.Add(std::to_string(value), field,
          "Member must have value less than or equal to " + std::to_string(max));
}

bool IsEnvKey(const std::string& k) {
  if (k.size() < 2 || !IsAlpha(k[0])) return false;
  for (char c : k)
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') return false;
  return true;
}

// "module.function" where module may be a dotted or slashed path: "app.handler",
// "src/app.handler", "pkg.mod.handler".
bool IsModuleFunction(const std::string& h) {
  if (h.empty() || h[0] == '/' || h.find("..") != std::string::npos) return false;
  size_t dot = h.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == h.size()) return false;
  std::string_view module(h.data(), dot), function(h.data() + dot + 1, h.size() - dot - 1);
  if (function.find('/') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= module.size()) {
    size_t end = module.find('/', start);
    if (end == std::string_view::npos) end = module.size();
    std::string_view part = module.substr(start, end - start);
    if (part.empty() || part == ".") return false;
    start = end + 1;
  }
  return true;
}

std::string SupportedRuntimes() {
  std::string s;
  for (const auto& r : kRuntimes) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

// The convention variable's value must name a convention; other runtimes than python3 know only
// Lambda's, so asking them for another is refused rather than silently ignored.
Status CheckConvention(const FunctionConfig& c, const std::string& family) {
  auto it = c.environment.find(kConventionVariable);
  if (it == c.environment.end()) return {};
  const std::string& value = it->second;
  std::string allowed;
  bool known = false;
  for (const char* name : kConventions) {
    allowed += (allowed.empty() ? "" : ", ") + std::string(name);
    known = known || value == name;
  }
  if (!known)
    return Error{kInvalid, 0,
                 "The environment variable " + std::string(kConventionVariable) + " is '" +
                     Shown(value) + "'; it must be one of: " + allowed + "."};
  if (family != "python3" && value != kDefaultConvention)
    return Error{kInvalid, 0,
                 "The environment variable " + std::string(kConventionVariable) + "=" + value +
                     " is supported by the python3 runtimes only; the " + c.runtime +
                     " runtime calls its handler the Lambda way (leave the variable out or set "
                     "it to lambda)."};
  return {};
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

}  // namespace

// A UUID-shaped id that changes with every revision (Lambda's RevisionId is opaque).
std::string RevisionId(const FunctionConfig& c) {
  std::string seed = c.name + "|" + c.function_id + "|" + std::to_string(c.revision) + "|" +
                     c.last_modified + "|" + c.code_sha256;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(seed.data(), seed.size(), md, &len, EVP_sha256(), nullptr);
  std::string h = Hex(md, 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

namespace {

Error FieldType(const std::string& field, const char* what) {
  return Error{kInvalid, 0, field + " must be " + what};
}

// Reads an integer field of an UpdateFunctionConfiguration body into a uint32, reporting values
// outside [min, max] the way ValidateConfig does.
Status ReadBoundedInt(const json& j, const std::string& key, const std::string& field,
                      uint64_t min, uint64_t max, uint32_t* out) {
  if (!j.is_number_integer()) return FieldType(key, "an integer");
  Violations v;
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    CheckRange(u, min, max, field, v);
    if (v.empty()) *out = static_cast<uint32_t>(u);
  } else {
    int64_t i = j.get<int64_t>();
    if (i < 0 || static_cast<uint64_t>(i) < min)
      v.Add(std::to_string(i), field,
            "Member must have value greater than or equal to " + std::to_string(min));
    else
      CheckRange(static_cast<uint64_t>(i), min, max, field, v);
    if (v.empty()) *out = static_cast<uint32_t>(i);
  }
  if (!v.empty()) return v.ToError();
  return {};
}

Result<std::map<std::string, std::string>> ReadVariables(const json& env) {
  std::map<std::string, std::string> out;
  if (env.is_null()) return out;
  if (!env.is_object()) return FieldType("Environment", "an object");
  if (!env.contains("Variables") || env["Variables"].is_null()) return out;
  const json& vars = env["Variables"];
  if (!vars.is_object()) return FieldType("Environment.Variables", "an object of strings");
  for (const auto& [k, val] : vars.items()) {
    if (!val.is_string()) return FieldType("Environment.Variables." + Shown(k), "a string");
    out[k] = val.get<std::string>();
  }
  return out;
}

// Layers: version ARNs, at most 5. The sizes of those base already has are kept (the registry
// resolves the others).
Result<std::vector<LayerRef>> ReadLayers(const json& j, const std::vector<LayerRef>& base) {
  std::vector<LayerRef> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return FieldType("Layers", "a list of layer version ARNs");
  if (j.size() > kMaxLayers)
    return Error{kInvalid, 0, "Cannot reference more than " + std::to_string(kMaxLayers) + " layers."};
  for (const json& a : j) {
    if (!a.is_string()) return FieldType("Layers", "a list of layer version ARNs");
    LayerRef ref{a.get<std::string>(), 0};
    for (const LayerRef& b : base)
      if (b.arn == ref.arn) ref.code_size = b.code_size;
    out.push_back(std::move(ref));
  }
  return out;
}

}  // namespace

// A function key (function_key.h): a valid name, in a valid account.
static Status ValidateKey(const std::string& key) {
  auto [account, name] = SplitFunctionKey(key);
  if (!ValidAccountId(account))
    return Error{kInvalid, 0, "Function key '" + key + "' does not start with a 12-digit account id"};
  return ValidateName(name);
}

std::string NowLastModified() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof(buf) - n, ".%03d+0000", static_cast<int>(ms % 1000));
  return buf;
}

std::string RuntimeFamily(const std::string& runtime) {
  for (const auto& r : kRuntimes)
    if (runtime == r.name) return r.family;
  return "";
}

std::string FunctionArn(const std::string& key) {
  auto [account, name] = SplitFunctionKey(key);
  return std::string("arn:aws:lambda:") + kRegion + ":" + account + ":function:" + name;
}

std::string QualifiedArn(const std::string& key, const std::string& qualifier) {
  return qualifier.empty() ? FunctionArn(key) : FunctionArn(key) + ":" + qualifier;
}

std::string VersionKey(const FunctionConfig& c) {
  return c.version == kLatest ? c.name : c.name + ":" + c.version;
}

std::string HandlerConvention(const FunctionConfig& config) {
  auto it = config.environment.find(kConventionVariable);
  return it == config.environment.end() ? kDefaultConvention : it->second;
}

Status ValidateName(const std::string& name) {
  Violations v;
  CheckName(name, v);
  if (!v.empty()) return v.ToError();
  return {};
}

Status ValidateConfig(const FunctionConfig& c) {
  // Shape checks first, all reported together as Lambda does.
  Violations v;
  // The name is a key: an account's functions are "ACCOUNT.NAME" (function_key.h).
  auto [account, name] = SplitFunctionKey(c.name);
  if (!ValidAccountId(account))
    v.Add(c.name, "functionName", "Member must belong to a 12-digit account id");
  CheckName(name, v);
  CheckRange(c.memory_mb, 128, 10240, "memorySize", v);
  CheckRange(c.timeout_s, 1, 900, "timeout", v);
  CheckRange(c.ephemeral_storage_mb, 512, 10240, "ephemeralStorage.size", v);
  if (c.handler.size() > kMaxHandler) {
    v.Add(c.handler, "handler", "Member must have length less than or equal to 128");
  } else if (!c.handler.empty()) {
    for (char ch : c.handler) {
      if (IsSpace(ch) || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        v.Add(c.handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+");
        break;
      }
    }
  }
  if (c.description.size() > kMaxDescription)
    v.Add(c.description, "description", "Member must have length less than or equal to 256");
  for (const auto& [k, val] : c.environment) {
    if (!IsEnvKey(k))
      v.Add(k, "environment.variables",
            "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
            "[a-zA-Z]([a-zA-Z0-9_])+]");
  }
  if (!v.empty()) return v.ToError();

  // Then the service's own rules, one at a time.
  if (c.runtime.empty())
    return Error{kInvalid, 0,
                 "Runtime and Handler are mandatory parameters for functions created with "
                 "deployment packages."};
  std::string family = RuntimeFamily(c.runtime);
  if (family.empty())
    return Error{kInvalid, 0,
                 "The runtime parameter of " + Shown(c.runtime) +
                     " is not supported by forklet. Supported runtimes: " + SupportedRuntimes()};
  if (family == "python3" || family == "nodejs" || family == "native") {  // FILE.SYMBOL for native
    if (c.handler.empty())
      return Error{kInvalid, 0, "Handler is a mandatory parameter for the " + c.runtime + " runtime."};
    if (!IsModuleFunction(c.handler))
      return Error{kInvalid, 0,
                   "Handler '" + Shown(c.handler) + "' is not valid for the " + c.runtime +
                       " runtime: it must be module.function (for example app.handler or "
                       "src/app.handler), without '..' or a leading '/'."};
  }
  std::string reserved;
  for (const char* r : kReservedEnv)
    if (c.environment.count(r)) reserved += (reserved.empty() ? "" : ", ") + std::string(r);
  if (!reserved.empty())
    return Error{kInvalid, 0,
                 "Lambda was unable to configure your environment variables because the "
                 "environment variables you have provided contains reserved keys that are "
                 "currently not supported for modification. Reserved keys used in this request: " +
                     reserved};
  if (auto s = CheckConvention(c, family); !s) return s;
  for (const auto& [k, val] : c.environment) {
    // The runner passes variables as C strings; a NUL would silently cut the value.
    if (val.find('\0') != std::string::npos)
      return Error{kInvalid, 0, "The value of environment variable " + k + " contains a NUL byte."};
  }
  if (auto it = c.environment.find("FORKLET_SNAPSHOT"); it != c.environment.end() &&
      it->second != "off" && it->second != "on" && it->second != "auto")
    return Error{kInvalid, 0, "The value of environment variable FORKLET_SNAPSHOT must be off, on or auto."};
  if (auto it = c.environment.find("FORKLET_NETWORK"); it != c.environment.end() &&
      it->second != "egress" && it->second != "none")
    return Error{kInvalid, 0, "The value of environment variable FORKLET_NETWORK must be egress or none."};
  if (!c.environment.empty()) {
    size_t size = json(c.environment).dump().size();  // Lambda measures the JSON form
    if (size > kMaxEnvironmentBytes)
      return Error{kInvalid, 0,
                   "Lambda was unable to configure your environment variables because the "
                   "environment variables you have provided exceeded the 4KB limit. Size "
                   "measured: " + std::to_string(size) + " bytes."};
  }
  return {};
}

namespace {

bool Empty(const json& j) {
  return j.is_null() || ((j.is_array() || j.is_object() || j.is_string()) && j.empty());
}

Error Unsupported(const std::string& field, const std::string& why) {
  return Error{kInvalid, 0, field + " is not supported by forklet: " + why};
}

Status CheckArchitectures(const json& body) {
  if (!body.contains("Architectures") || body["Architectures"].is_null()) return {};
  const json& a = body["Architectures"];
  if (!a.is_array() || a.size() != 1 || !a[0].is_string())
    return Error{kInvalid, 0,
                 "1 validation error detected: Value at 'architectures' failed to satisfy "
                 "constraint: Member must have length less than or equal to 1"};
  std::string arch = a[0].get<std::string>();
  if (arch == "x86_64") return {};
  if (arch == "arm64") return Unsupported("Architectures [arm64]", "this node runs x86_64 only");
  return Error{kInvalid, 0,
               "1 validation error detected: Value '[" + Shown(arch) +
                   "]' at 'architectures' failed to satisfy constraint: Member must satisfy "
                   "constraint: [Member must satisfy enum value set: [x86_64, arm64]]"};
}

Status CheckPublish(const json& body) {
  if (!body.contains("Publish") || body["Publish"].is_null()) return {};
  if (!body["Publish"].is_boolean()) return FieldType("Publish", "a boolean");
  if (body["Publish"].get<bool>())
    return Unsupported("Publish", "versions are not available yet (only $LATEST exists)");
  return {};
}

// Lambda's dead-letter queue is an SQS queue or an SNS topic, and this node has neither: a
// TargetArn is refused rather than stored, so that no one believes a dead letter went there.
// An empty one (`--dead-letter-config TargetArn=`, how a DLQ is removed) means none and is taken.
Status CheckDeadLetterConfig(const json& body) {
  if (!body.contains("DeadLetterConfig") || body["DeadLetterConfig"].is_null()) return {};
  const json& d = body["DeadLetterConfig"];
  if (!d.is_object()) return FieldType("DeadLetterConfig", "an object");
  if (!d.contains("TargetArn") || d["TargetArn"].is_null()) return {};
  if (!d["TargetArn"].is_string()) return FieldType("DeadLetterConfig.TargetArn", "a string");
  const std::string arn = d["TargetArn"].get<std::string>();
  if (arn.empty()) return {};
  static const std::regex kArn("arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*");
  if (arn.size() > 256 || !std::regex_match(arn, kArn)) {
    Violations v;
    v.Add(arn, "deadLetterConfig.targetArn",
          "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()");
    return v.ToError();
  }
  return Error{kInvalid, 0,
               "DeadLetterConfig.TargetArn " + Shown(arn) +
                   " is not supported by forklet: this node has no SQS or SNS to deliver dead "
                   "letters to. Failed Event invocations go to forklet's dead-letter store "
                   "(forklet events dead-letters); to send them to another function, use an "
                   "OnFailure destination (aws lambda put-function-event-invoke-config "
                   "--destination-config)"};
}

}  // namespace

Status CheckUnsupportedCodeFields(const json& body) {
  if (!body.is_object()) return {};
  if (auto s = CheckArchitectures(body); !s) return s;
  if (auto s = CheckPublish(body); !s) return s;
  for (const char* key : {"S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri", "SourceKMSKeyArn"})
    if (body.contains(key) && !Empty(body[key]))
      return Unsupported(key, "code is accepted only as ZipFile");
  return {};
}

Status CheckUnsupportedFields(const json& body) {
  if (!body.is_object()) return {};
  if (auto s = CheckArchitectures(body); !s) return s;
  if (auto s = CheckPublish(body); !s) return s;
  if (body.contains("VpcConfig") && body["VpcConfig"].is_object()) {
    const json& v = body["VpcConfig"];
    for (const char* key : {"SubnetIds", "SecurityGroupIds"})
      if (v.contains(key) && !Empty(v[key]))
        return Unsupported("VpcConfig", "instances have no network beyond loopback");
  }
  if (auto s = CheckDeadLetterConfig(body); !s) return s;
  for (const char* key : {"KMSKeyArn", "FileSystemConfigs", "ImageConfig", "CodeSigningConfigArn",
                          "SnapStart"})
    if (body.contains(key) && !Empty(body[key]) &&
        !(std::string(key) == "SnapStart" && body[key].value("ApplyOn", "None") == "None"))
      return Unsupported(key, "see README (Lambda fields) for what forklet applies");
  if (body.contains("EphemeralStorage") && !body["EphemeralStorage"].is_null()) {
    const json& e = body["EphemeralStorage"];
    if (!e.is_object() || !e.contains("Size") || !e["Size"].is_number_integer())
      return FieldType("EphemeralStorage.Size", "an integer");
    Violations v;
    int64_t size = e["Size"].get<int64_t>();
    if (size < 512)
      v.Add(std::to_string(size), "ephemeralStorage.size",
            "Member must have value greater than or equal to 512");
    else if (size > 10240)
      v.Add(std::to_string(size), "ephemeralStorage.size",
            "Member must have value less than or equal to 10240");
    if (!v.empty()) return v.ToError();
  }
  return {};
}

Result<FunctionConfig> ApplyLambdaChanges(const FunctionConfig& base, const json& changes) {
  if (!changes.is_object()) return Error{kInvalid, 0, "the request body must be a JSON object"};
  if (auto s = CheckUnsupportedFields(changes); !s) return s.error();
  FunctionConfig c = base;
  auto read_string = [&](const char* key, std::string* out) -> Status {
    if (!changes.contains(key)) return {};
    const json& j = changes[key];
    if (!j.is_string()) return FieldType(key, "a string");
    *out = j.get<std::string>();
    return {};
  };
  if (auto s = read_string("Handler", &c.handler); !s) return s.error();
  if (auto s = read_string("Runtime", &c.runtime); !s) return s.error();
  if (auto s = read_string("Description", &c.description); !s) return s.error();
  if (auto s = read_string("Role", &c.role); !s) return s.error();
  if (changes.contains("MemorySize"))
    if (auto s = ReadBoundedInt(changes["MemorySize"], "MemorySize", "memorySize", 128, 10240,
                                &c.memory_mb);
        !s)
      return s.error();
  if (changes.contains("Timeout"))
    if (auto s = ReadBoundedInt(changes["Timeout"], "Timeout", "timeout", 1, 900, &c.timeout_s); !s)
      return s.error();
  if (changes.contains("Layers")) {
    auto layers = ReadLayers(changes["Layers"], base.layers);
    if (!layers) return layers.error();
    c.layers = std::move(layers.value());
  }
  if (changes.contains("EphemeralStorage") && changes["EphemeralStorage"].is_object())
    c.ephemeral_storage_mb = changes["EphemeralStorage"]["Size"].get<uint32_t>();  // range-checked above
  if (changes.contains("Environment")) {
    auto vars = ReadVariables(changes["Environment"]);
    if (!vars) return vars.error();
    c.environment = std::move(vars.value());
  }
  return c;
}

json ToLambdaJson(const FunctionConfig& c) {
  json j{
      {"FunctionName", NameOf(c.name)},
      {"FunctionArn", QualifiedArn(c.name, c.version == kLatest ? "" : c.version)},
      {"Runtime", c.runtime},
      {"Role", c.role},
      {"CodeSize", c.code_size},
      {"Description", c.description},
      {"Timeout", c.timeout_s},
      {"MemorySize", c.memory_mb},
      {"LastModified", c.last_modified},
      {"CodeSha256", c.code_sha256},
      {"Version", c.version},
      {"TracingConfig", {{"Mode", "PassThrough"}}},
      {"RevisionId", RevisionId(c)},
      {"State", "Active"},
      {"LastUpdateStatus", "Successful"},
      {"PackageType", "Zip"},
      {"Architectures", json::array({"x86_64"})},
      {"EphemeralStorage", {{"Size", c.ephemeral_storage_mb}}},
  };
  if (!c.handler.empty()) j["Handler"] = c.handler;
  if (!c.environment.empty()) j["Environment"] = {{"Variables", c.environment}};
  if (!c.layers.empty()) {
    json layers = json::array();
    for (const LayerRef& l : c.layers) layers.push_back({{"Arn", l.arn}, {"CodeSize", l.code_size}});
    j["Layers"] = std::move(layers);
  }
  return j;
}

json ToStateJson(const FunctionConfig& c) {
  json j{
      {"name", c.name},
      {"runtime", c.runtime},
      {"handler", c.handler},
      {"memory_mb", c.memory_mb},
      {"timeout_s", c.timeout_s},
      {"ephemeral_storage_mb", c.ephemeral_storage_mb},
      {"environment", c.environment},
      {"description", c.description},
      {"role", c.role},
      {"code_sha256", c.code_sha256},
      {"code_size", c.code_size},
      {"revision", c.revision},
      {"last_modified", c.last_modified},
      {"function_id", c.function_id},
  };
  if (c.reserved_concurrency) j["reserved_concurrency"] = *c.reserved_concurrency;
  if (c.version != kLatest) j["version"] = c.version;
  if (!c.layers.empty()) {
    json layers = json::array();
    for (const LayerRef& l : c.layers) layers.push_back({{"arn", l.arn}, {"code_size", l.code_size}});
    j["layers"] = std::move(layers);
    j["opt_revision"] = c.opt_revision;
  }
  return j;
}

Result<FunctionConfig> FromStateJson(const json& j) {
  if (!j.is_object()) return MakeError("function state", "not a JSON object");
  FunctionConfig c;
  try {
    c.name = j.at("name").get<std::string>();
    c.runtime = j.at("runtime").get<std::string>();
    c.handler = j.at("handler").get<std::string>();
    c.memory_mb = j.at("memory_mb").get<uint32_t>();
    c.timeout_s = j.at("timeout_s").get<uint32_t>();
    c.ephemeral_storage_mb = j.value("ephemeral_storage_mb", 512u);  // absent before it was applied
    c.environment = j.at("environment").get<std::map<std::string, std::string>>();
    c.description = j.at("description").get<std::string>();
    c.role = j.at("role").get<std::string>();
    c.code_sha256 = j.at("code_sha256").get<std::string>();
    c.code_size = j.at("code_size").get<uint64_t>();
    c.revision = j.at("revision").get<uint64_t>();
    c.last_modified = j.at("last_modified").get<std::string>();
    // Written since per-function identities and persisted concurrency; absent in older state.
    c.function_id = j.value("function_id", std::string());
    if (j.contains("reserved_concurrency"))
      c.reserved_concurrency = j.at("reserved_concurrency").get<uint32_t>();
    c.version = j.value("version", std::string(kLatest));
    for (const json& l : j.value("layers", json::array()))
      c.layers.push_back(LayerRef{l.at("arn").get<std::string>(), l.at("code_size").get<uint64_t>()});
    c.opt_revision = j.value("opt_revision", uint64_t{0});
  } catch (const json::exception& e) {
    return MakeError("function state", e.what());
  }
  // The name becomes a path component; never trust it unchecked.
  if (auto s = ValidateKey(c.name); !s) return MakeError("function state", s.error().message);
  if (c.version != kLatest && (c.version.empty() || c.version.size() > 10 ||
                               c.version.find_first_not_of("0123456789") != std::string::npos))
    return MakeError("function state", "bad version '" + c.version + "'");
  return c;
}

}  // namespace forklet::registry
