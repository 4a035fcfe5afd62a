// The runtime families and their zygotes.
#include "runtime/core/runners.h"

#include <unistd.h>

#include <array>

namespace forklet::core {
namespace {

constexpr const char* kUnavailable = "InvalidRuntimeException";

enum class Zygote { kPython, kExecutable, kPythonExec };
struct Family {
  const char* family;
  Zygote zygote;
};
// The C++ runners share one executable: its argument is the family's mode.
constexpr std::array<Family, 5> kFamilies{{
    {"python3", Zygote::kPython},
    {"python3-cold", Zygote::kPythonExec},  // forklet-zygote's python3 mode: its children exec Python
    {"native", Zygote::kExecutable},
    {"provided", Zygote::kExecutable},
    {"nodejs", Zygote::kExecutable},
}};

Status Executable(const std::string& family, const std::string& path) {
  if (access(path.c_str(), X_OK) != 0)
    return Error{kUnavailable, errno,
                 "runtime family " + family + " is not available: cannot run " + path};
  return {};
}

}  // namespace

Result<zygote::ZygoteCommand> ZygoteCommandFor(const std::string& family, const RunnerPaths& paths) {
  const Family* f = nullptr;
  for (const auto& candidate : kFamilies)
    if (family == candidate.family) f = &candidate;
  if (!f) return MakeError(kUnavailable, "runtime family " + family + " is not available");
  zygote::ZygoteCommand cmd;
  cmd.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  switch (f->zygote) {
    case Zygote::kPython:
      if (auto s = Executable(family, paths.python); !s) return s.error();
      cmd.argv = {paths.python, "-I", "-S", "-B", paths.runners_dir + "/python/forklet_zygote.py",
                  paths.zygote_library};
      break;
    case Zygote::kExecutable:
      if (auto s = Executable(family, paths.zygote_executable); !s) return s.error();
      cmd.argv = {paths.zygote_executable, family};
      break;
    case Zygote::kPythonExec:
      if (auto s = Executable(family, paths.python); !s) return s.error();
      if (auto s = Executable(family, paths.zygote_executable); !s) return s.error();
      cmd.argv = {paths.zygote_executable, "python3", paths.python};
      break;
  }
  return cmd;
}

std::string ColdExecFamily(const std::string& family) { return family == "python3" ? "python3-cold" : ""; }

}  // namespace forklet::core
