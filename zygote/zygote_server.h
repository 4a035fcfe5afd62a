// The zygote's end of the fork-server protocol: a C ABI any language's zygote calls once booted.
#pragma once

#include <stdint.h>

extern "C" {

// Serves fork requests on control_fd (a SOCK_SEQPACKET socket from the daemon). Never returns in
// the zygote except when the daemon has gone (returns -1: the zygote should exit). Returns 0 in
// each forked child once its sandbox is complete: the runner then finds its channel at fd 3 and
// has already reported setup on it. A child whose setup failed reports that and _exits.
// The caller must be single-threaded.
int forklet_zygote_serve(int control_fd, uint32_t boot_us);

// Optional: called in the zygote whenever no request is waiting, until it returns 0. Lets a
// runtime answer its first fork right after a minimal boot (a cold start) and preload the rest
// while idle. Set before forklet_zygote_serve.
void forklet_zygote_set_idle_hook(int (*hook)(void));

// In a child (after forklet_zygote_serve returned 0): 1 when the daemon asked for a fresh
// interpreter (kForkExecRunner): the runner must exec it now, in the sandbox, and serve from
// there. 0: serve as the forked copy.
int forklet_zygote_child_execs(void);

}
