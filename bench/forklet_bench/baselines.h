// The baselines, timed by the same program as forklet: a process run to completion
// (posix_spawn to waitpid) for python3 -c and bubblewrap, and the clone floor.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sandbox/error.h"

namespace forklet::bench {

// Wall time (ms) from posix_spawn to waitpid of argv (stdin, stdout and stderr on /dev/null
// unless capture is given: then stdout is read into it). Fails unless the exit status is 0.
Result<double> RunTimed(const std::vector<std::string>& argv, std::string* capture = nullptr);

// Starts argv with stdin, stdout and stderr on /dev/null and no signal blocked (forklet-bench
// blocks SIGINT and SIGTERM in every thread for its sigwait; a server it starts must still stop).
Result<pid_t> SpawnQuiet(const std::vector<std::string>& argv);

// bubblewrap with every namespace around the given interpreter command.
std::vector<std::string> BubblewrapArgv(const std::vector<std::string>& command);

// The clone floor's own per-iteration times (ms), from one run of forklet-clone-floor.
Result<std::vector<double>> CloneFloorIterations(const std::string& clone_floor, int iterations);

}  // namespace forklet::bench
