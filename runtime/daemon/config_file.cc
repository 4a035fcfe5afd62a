// forkletd's configuration file (JSON, /etc/forklet/forkletd.json by default): the long options
#include "runtime/daemon/config_file.h"

#include <fstream>
#include <sstream>

namespace forklet::daemon {

Result<ConfigFile> ReadConfigFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return SysError("read configuration " + path);
  std::stringstream text;
  text << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false,
                                           /*ignore_comments=*/true);
  if (j.is_discarded()) return MakeError("configuration " + path, "not valid JSON");
  if (!j.is_object())
    return MakeError("configuration " + path, "expected a JSON object of settings");
  ConfigFile out;
  for (const auto& [key, value] : j.items()) {
    auto bad = [&](const std::string& why) {
      return MakeError("configuration " + path, "\"" + key + "\": " + why);
    };
    if (key == "prices") {
      if (!value.is_object() && !value.is_null()) return bad("expected an object");
      out.prices = value;
      continue;
    }
    if (key.empty() || key[0] == '-' || key == "config" || key == "help")
      return bad("not a setting of the configuration file");
    if (value.is_null()) continue;
    if (value.is_boolean()) {
      out.flags.push_back((value.get<bool>() ? "--" : "--no-") + key);
    } else if (value.is_string()) {
      out.flags.insert(out.flags.end(), {"--" + key, value.get<std::string>()});
    } else if (value.is_number_unsigned()) {
      out.flags.insert(out.flags.end(), {"--" + key, std::to_string(value.get<uint64_t>())});
    } else {
      return bad("expected a string, a whole number, true, false or null");
    }
  }
  return out;
}

}  // namespace forklet::daemon
