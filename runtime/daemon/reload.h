// SIGHUP: the configuration is read again (the file, then the same flags) and what can change
// live is applied without dropping warm instances; the rest waits for a restart.
#pragma once

#include "runtime/core/scheduler.h"
#include "runtime/daemon/options.h"

namespace forklet::daemon {

// Applies the new configuration to the scheduler and *running. Returns false, having logged why,
// when it is invalid: the running configuration stays as it was.
bool Reload(int argc, char** argv, Options* running, core::Scheduler* scheduler);

}  // namespace forklet::daemon
