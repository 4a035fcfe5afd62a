// Which zygote runs each runtime family: the command forkletd spawns for it.
#pragma once

#include <string>

#include "sandbox/error.h"
#include "zygote/zygote_client.h"

namespace forklet::core {

// Where the runners are installed (forkletd's options find them next to its binary).
struct RunnerPaths {
  std::string runners_dir;        // lang-runners/ (python/forklet_zygote.py ...)
  std::string zygote_library;     // libforklet_zygote.so, loaded by the Python zygote
  std::string zygote_executable;  // forklet-zygote, the zygote of the C++ runners
  std::string python = "/usr/bin/python3";
};

// The zygote command of a runtime family ("python3", "native", "provided", "nodejs"), or of a
// cold-start fork server ("python3-cold"). An
// InvalidRuntimeException error names what is missing when this host cannot run the family.
Result<zygote::ZygoteCommand> ZygoteCommandFor(const std::string& family, const RunnerPaths& paths);

// The fork server whose sandboxed children exec the family's interpreter, for the family's cold
// starts ("python3" -> "python3-cold": forklet-zygote's python3 mode); "" when it has none.
std::string ColdExecFamily(const std::string& family);

}  // namespace forklet::core
