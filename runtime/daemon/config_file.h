// forkletd's configuration file (JSON, /etc/forklet/forkletd.json by default): the long options
// without their dashes, e.g. {"keep-alive": 600, "memory-budget-mb": 4096, "warmup": true}.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/error.h"

namespace forklet::daemon {

#ifdef FORKLET_DEFAULT_CONFIG
inline constexpr const char* kDefaultConfigPath = FORKLET_DEFAULT_CONFIG;
#else
inline constexpr const char* kDefaultConfigPath = "/etc/forklet/forkletd.json";
#endif

struct ConfigFile {
  // The settings as the flags they stand for ({"keep-alive": 600} is "--keep-alive 600"; true
  // and false are "--NAME" and "--no-NAME"; null is the built-in default), so that the command
  // line's parser checks both alike.
  std::vector<std::string> flags;
  // "prices": an object passed as it is to the billing ledger (at start and on SIGHUP).
  nlohmann::json prices;
};

// Reads the file and checks its shape: a JSON object of scalars (and "prices"); what each value
// may be is the flag parser's to say.
Result<ConfigFile> ReadConfigFile(const std::string& path);

}  // namespace forklet::daemon
