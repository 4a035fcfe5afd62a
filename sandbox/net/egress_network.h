// Outbound network for instances: one bridge per daemon with a /22 from a private pool, a veth per
// instance, NAT through the host's default route, and nftables tables of forklet's own that keep
// instances from the host, from each other, from link-local/metadata addresses and from spoofing.
// Everything it makes is named after the daemon's id and removed when it goes (or at the next start).
#pragma once

#include <netinet/in.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sandbox/error.h"
#include "sandbox/net/rtnetlink.h"

namespace forklet::sandbox::net {

// How a function's instances reach the network: kEgress (outbound, as Lambda), kNone (loopback only).
enum class NetworkMode { kEgress, kNone };
std::optional<NetworkMode> ParseNetworkMode(const std::string& text);
const char* NetworkModeName(NetworkMode mode);

struct EgressOptions {
  std::string id;  // a daemon's own: [0-9a-f]{6} (its interfaces are fk<id>..., its tables forklet_<id>)
  // Private range the daemons of a host take their /22s from (the first one that collides with no
  // address or route of the host).
  std::string pool = "10.231.0.0/16";
  std::string nft;        // nft binary; empty: /usr/sbin/nft, else $PATH
  std::string run_dir = "/run/forklet";  // the lock of the range's allocation, the ip_forward note
};

// The names of what a daemon with this id owns.
std::string BridgeName(const std::string& id);     // fk<id>br
std::string VethPrefix(const std::string& id);     // fk<id>v: fk<id>v<n>, the host end of instance n
std::string TableName(const std::string& id);      // forklet_<id> (inet and bridge)

class EgressNetwork {
 public:
  // Removes what a predecessor with the same id left, then makes the bridge, the tables and turns
  // IPv4 forwarding on if it was off (noted in run_dir: the last daemon to go turns it back off).
  static Result<std::unique_ptr<EgressNetwork>> Create(const EgressOptions& options);
  ~EgressNetwork();  // removes the tables, the bridge and every veth of the id

  // Gives the net namespace ns_fd an eth0 on the bridge with its own address, MAC and default route;
  // `inside` is an rtnetlink socket opened in that namespace. Returns the host end's name.
  // Thread-safe; the calling thread may be in any namespace.
  Result<std::string> Attach(int ns_fd, Rtnetlink& inside);
  // Cuts an instance off (its namespace keeps only loopback): deletes the host end of its veth.
  Status Detach(const std::string& veth);

  // What a daemon with this id left: interfaces, tables, and the ip_forward it changed when no
  // other forklet bridge remains. Returns how many things it removed.
  // tables=false: leaves the tables to the caller (Create replaces them in its own transaction).
  static Result<int> RemoveStale(const EgressOptions& options, bool tables = true);

  const std::string& bridge() const { return bridge_; }
  std::string subnet() const;   // a.b.c.d/22
  in_addr gateway() const { return gateway_; }

 private:
  EgressNetwork() = default;
  Status Setup();
  std::string RulesScript() const;

  EgressOptions options_;
  std::string bridge_, prefix_, table_;
  in_addr base_{}, gateway_{};
  int prefix_len_ = 22;
  int bridge_index_ = 0;
  std::mutex mu_;  // host_ and next_
  std::optional<Rtnetlink> host_;
  uint32_t next_ = 2;  // .0 is the network, .1 the bridge (gateway)
  bool forward_enabled_ = false;
};

}  // namespace forklet::sandbox::net
