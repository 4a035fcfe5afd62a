// The signals forkletd acts on (SIGTERM and SIGINT: drain and stop; SIGHUP: reload), turned into
// events that main waits for. The handlers only write the signal's number to a pipe.
#pragma once

#include "sandbox/error.h"

namespace forklet::daemon {

// Installs the handlers (and ignores SIGPIPE). Once, before any thread starts.
Status InstallSignalEvents();

// Blocks until one of the signals arrives; returns its number.
int WaitForSignal();

}  // namespace forklet::daemon
