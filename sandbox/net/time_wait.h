// Removes the TCP connections in TIME_WAIT of the calling thread's net namespace (sock_diag's
// SOCK_DESTROY, as `ss -K state time-wait`): what the namespace's own destruction does to them.
// For a namespace reused by its function's next instance (runtime/core/netns_cache.h), whose
// predecessor's connections must not show in /proc/net/tcp; needs CAP_NET_ADMIN over it.
#pragma once

#include "sandbox/error.h"

namespace forklet::sandbox::net {

// How many it removed (IPv4 and IPv6). The netlink socket it uses is freed by the kernel after an
// RCU grace period: until then it counts in the namespace's sockstat.
Result<int> DestroyTimeWait();

}  // namespace forklet::sandbox::net
