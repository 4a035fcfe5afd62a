// Network namespaces of ended instances, kept for the next new instance of the same deployment of
// the same function, never another's (not another function, version, tenant, revision, or a
// re-created function of the same name). Making a namespace with its eth0 on the egress bridge and
// the kernel's asynchronous destruction of it (cleanup_net) were among the largest costs of a new
// sandbox; a reused one costs a lock. A namespace comes back only once its instance's pid
// namespace init is reaped (no process of it is left), and is kept only when, read from inside,
// it holds no socket, connection or fragment of any kind (connections in TIME_WAIT are removed
// first), and only the interfaces and routes it was made with. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/core/netns_pool.h"

namespace forklet::core {

class NetnsCache;

// An instance's namespace: back to the cache when the lease ends (after every process of the
// instance is gone), closed (the kernel removes it, and its veth) if the cache is gone or it does
// not take it. Move-only.
class NetnsLease {
 public:
  NetnsLease() = default;
  NetnsLease(PooledNetns ns, std::string key, std::string generation, std::weak_ptr<NetnsCache> cache)
      : ns_(std::move(ns)), key_(std::move(key)), generation_(std::move(generation)), cache_(std::move(cache)) {}
  NetnsLease(NetnsLease&& o) noexcept { *this = std::move(o); }
  NetnsLease& operator=(NetnsLease&& o) noexcept;
  NetnsLease(const NetnsLease&) = delete;
  NetnsLease& operator=(const NetnsLease&) = delete;
  ~NetnsLease() { Release(); }

  int fd() const { return ns_.fd; }
  void Release();  // back to the cache: only once no process of its instance is left
  void Discard();  // closed, never reused

 private:
  PooledNetns ns_;
  std::string key_, generation_;
  std::weak_ptr<NetnsCache> cache_;
};

struct NetnsCounts {
  uint64_t reused = 0;     // handed to a new instance of the function that used it before
  uint64_t discarded = 0;  // given back but closed: not clean, no room, or its function changed
  uint64_t unclean = 0;    // of those: failed the check (a socket or connection left, say)
  uint64_t time_wait_removed = 0;  // connections in TIME_WAIT removed from namespaces given back
  size_t cached = 0;       // checked, waiting for their function's next new instance
};

class NetnsCache {
 public:
  // per_function: namespaces kept per function version; max_total: for all together (a namespace
  // is a few tens of KB of kernel memory, counted in no function's memory and not in the
  // scheduler's budget). linger: a function's namespaces go after this long without a start or an
  // end of one of its instances (as its bound zygote does).
  NetnsCache(size_t per_function, size_t max_total, std::chrono::steady_clock::duration linger);
  ~NetnsCache();  // stops the checker and closes every namespace it holds

  // A namespace an ended instance of exactly this deployment used, checked; fd -1 when none.
  // key: the function's version key (registry::VersionKey); generation: its deployment
  // (Generation). A start of a new generation drops the old one's.
  PooledNetns Take(const std::string& key, const std::string& generation);
  // A used namespace, once no process of its instance is left: checked off the caller's path and
  // kept for the next Take of the same key and generation, or closed.
  void Give(const std::string& key, const std::string& generation, PooledNetns used);
  // The function (its key: every version of it; or one version key) changed or was deleted.
  void Forget(const std::string& function);
  NetnsCounts counts();

  // A returned namespace with sockets still closing (an orphaned connection's FIN handshake, a
  // netlink socket freed after an RCU grace period) is checked again after kRecheck, up to
  // kChecks times, then discarded. Connections in TIME_WAIT (60 s) are removed, as the
  // namespace's destruction would, and it is checked again.
  static constexpr auto kRecheck = std::chrono::milliseconds(20);
  static constexpr int kChecks = 5;
  // More in TIME_WAIT than this: discarded (each is removed by a round trip to the kernel). Where
  // the kernel cannot remove them (no CONFIG_INET_DIAG_DESTROY), any: discarded.
  static constexpr uint64_t kMaxTimeWait = 256;

 private:
  struct Entry {
    std::string generation;
    std::deque<PooledNetns> ready;
    std::chrono::steady_clock::time_point used_at;
  };
  struct Returned {
    std::string key, generation;
    PooledNetns ns;
    int checks = 0;
    std::chrono::steady_clock::time_point due;
  };
  enum class Verdict { kClean, kClosing, kUnclean };
  void CheckLoop();
  // Enters the namespace (this thread only) and reads it.
  Verdict Inspect(const PooledNetns& ns, std::string* why);
  void Keep(Returned r);                // mu_ held
  void DiscardLocked(PooledNetns* ns);  // mu_ held
  void ExpireLocked(std::chrono::steady_clock::time_point now);
  size_t TotalLocked() const;

  const size_t per_function_, max_total_;
  const std::chrono::steady_clock::duration linger_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;  // by version key
  std::deque<Returned> returned_;
  NetnsCounts counts_;
  bool stopping_ = false;
  std::thread checker_;
};

}  // namespace forklet::core
