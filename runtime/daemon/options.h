// forkletd's configuration: built-in defaults, then command-line flags.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/registry/code_archive.h"

namespace forklet::daemon {

struct Options {
  std::string listen = "127.0.0.1:9000";
  std::string state_dir = "/var/lib/forklet";
  std::string socket_path;  // default: <state_dir>/forkletd.sock
  bool warmup = true;
  core::SchedulerOptions scheduler;
  core::LauncherOptions launcher;  // state_dir and cgroup_tag are derived in Finish()
  registry::ArchiveLimits archive;
};

// Parses argv over the defaults. Returns false with a message on bad input (or --help, with the
// usage as the message and *help set).
bool ParseOptions(int argc, char** argv, Options* out, std::string* message, bool* help);

// Fills what follows from the rest (socket path, cgroup tag) once the state dir is canonical.
void FinishOptions(Options* options);

const char* Usage();

}  // namespace forklet::daemon
