// Packing a function directory into a deployment zip in memory (libzip).
#pragma once

#include <string>

#include "sandbox/error.h"

namespace forklet::tools {

// Every regular file below dir, with paths relative to it and executable bits kept.
Result<std::string> ZipDirectory(const std::string& dir);

}  // namespace forklet::tools
