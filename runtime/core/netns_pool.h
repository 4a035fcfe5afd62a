// Network namespaces made ahead of time (creating one costs ~0.5 ms, most of a clone's cost; with
// an interface on the egress bridge a few ms more), each with its loopback up and, for the egress
// pool, its eth0, address and default route; handed to new instances as fds. Each keeps no TCP
// metrics (net.ipv4.tcp_no_metrics_save, per namespace): a namespace reused by its function's next
// instance (netns_cache.h) carries no per-destination state over. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/net/egress_network.h"

namespace forklet::core {

struct PooledNetns {
  int fd = -1;        // the namespace (the taker owns it); -1: none
  std::string veth;   // the host end of its eth0; empty: loopback only
};

class NetnsPool {
 public:
  // egress: the bridge its namespaces are attached to; null: loopback-only namespaces.
  NetnsPool(size_t target, sandbox::net::EgressNetwork* egress = nullptr);
  ~NetnsPool();  // stops the filler and closes what was not handed out (their veths go with them)

  // A fresh, unused namespace, or fd -1 when none is ready.
  PooledNetns Take();
  // One made now on the calling thread (for when the pool ran dry and the caller cannot go without).
  Result<PooledNetns> Make();
  uint64_t made() const { return made_; }  // by the filler and Make, so far

 private:
  void Fill();
  // Makes one and returns the calling thread to home_fd; a failure to return is fatal for the
  // filler (*stranded).
  Result<PooledNetns> CreateOne(int home_fd, bool* stranded);

  const size_t target_;
  sandbox::net::EgressNetwork* const egress_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PooledNetns> ready_;
  bool stopping_ = false;
  std::atomic<uint64_t> made_{0};
  std::thread filler_;
};

}  // namespace forklet::core
