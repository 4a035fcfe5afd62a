// A small rtnetlink client: the links, addresses, routes and neighbours of instances' networks.
// A socket talks to the net namespace it was opened in, whichever thread uses it later.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/error.h"

namespace forklet::sandbox::net {

using Mac = std::array<uint8_t, 6>;

class Rtnetlink {
 public:
  // A socket in the calling thread's current net namespace.
  static Result<Rtnetlink> Open();
  Rtnetlink(Rtnetlink&& o) noexcept : fd_(o.fd_), seq_(o.seq_) { o.fd_ = -1; }
  Rtnetlink& operator=(Rtnetlink&& o) noexcept;
  ~Rtnetlink();

  // A bridge with a fixed MAC (it never follows its ports').
  Status CreateBridge(const std::string& name, const Mac& mac);
  // A veth pair: `inside` (with `mac`) in the net namespace ns_fd, `outside` here.
  Status CreateVethInto(const std::string& inside, const Mac& mac, int ns_fd, const std::string& outside);
  // Up, and (master_index > 0) a port of that bridge.
  Status SetUp(int index, int master_index = 0);
  // The bridge port may talk only to the bridge itself, never to another isolated port.
  Status IsolatePort(int index);
  Status AddAddress(int index, in_addr addr, int prefix_len);
  Status AddDefaultRoute(int index, in_addr gateway);
  // A permanent ARP entry: what the instance says in ARP cannot change it.
  Status AddPermanentNeighbour(int index, in_addr addr, const Mac& mac);
  Status DeleteLink(const std::string& name);  // ENODEV when there is none
  struct Link {
    int index;
    std::string name;
  };
  Result<std::vector<Link>> Links();
  // The index of a link in this socket's namespace, 0 when there is none.
  Result<int> IndexOf(const std::string& name);

 private:
  explicit Rtnetlink(int fd) : fd_(fd) {}
  // Sends one request and waits for its ack, or (links set) collects a link dump.
  Status Talk(void* msg, const std::string& what, std::vector<Link>* links = nullptr);
  int fd_ = -1;
  uint32_t seq_ = 0;
};

}  // namespace forklet::sandbox::net
