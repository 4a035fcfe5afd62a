// What a network namespace holds, read from inside it: its sockets as the kernel counts them, its
// interfaces and its routes. Checks that a namespace an instance used is as it was made before
// the next instance of the same function gets it (runtime/core/netns_cache.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox::net {

struct NetnsState {
  uint64_t sockets = 0;    // user sockets alive in it, of any family (sockstat's "sockets: used")
  uint64_t inet = 0;       // TCP, UDP, UDP-Lite and raw sockets in use, IPv4 and IPv6
  uint64_t time_wait = 0;  // TCP connections in TIME_WAIT: no socket any more, but in /proc/net/tcp
  uint64_t fragments = 0;  // IP fragment queues being reassembled
  std::vector<std::string> interfaces;  // sorted
  size_t ipv4_routes = 0;  // of the main table

  // Nothing of a former user: no socket, connection or fragment of any kind.
  bool quiet() const { return sockets == 0 && inet == 0 && time_wait == 0 && fragments == 0; }
};

// Adds what /proc/net/sockstat or sockstat6 says to *state; false when the text is not one.
// Only the per-namespace counters are read (TCP's orphan, alloc and mem are the host's).
bool ParseSockstat(std::string_view text, NetnsState* state);
// The interface names of /proc/net/dev, sorted.
std::vector<std::string> ParseInterfaces(std::string_view proc_net_dev);
// The routes of /proc/net/route (its header line aside).
size_t CountRoutes(std::string_view proc_net_route);

// The calling thread's net namespace (/proc/thread-self/net: setns is per thread).
Result<NetnsState> ReadNetnsState();

}  // namespace forklet::sandbox::net
