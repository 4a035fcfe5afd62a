// The checker thread enters each returned namespace (setns is per thread, so only it ever moves),
// reads what it holds (sandbox/net/netns_state.h), removes its connections in TIME_WAIT
// (sandbox/net/time_wait.h), and files it under its function, or closes it.
// Take and Give only move fds under a lock: neither enters a namespace.
#include "runtime/core/netns_cache.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>

#include "runtime/log/log.h"
#include "sandbox/net/netns_state.h"
#include "sandbox/net/time_wait.h"

namespace forklet::core {

using SteadyClock = std::chrono::steady_clock;

NetnsLease& NetnsLease::operator=(NetnsLease&& o) noexcept {
  if (this != &o) {
    Release();
    ns_ = std::move(o.ns_);
    key_ = std::move(o.key_);
    generation_ = std::move(o.generation_);
    cache_ = std::move(o.cache_);
    o.ns_.fd = -1;
  }
  return *this;
}

void NetnsLease::Discard() {
  if (ns_.fd >= 0) close(ns_.fd);
  ns_.fd = -1;
}

void NetnsLease::Release() {
  if (ns_.fd < 0) return;
  if (auto cache = cache_.lock())
    cache->Give(key_, generation_, std::move(ns_));
  else
    close(ns_.fd);
  ns_.fd = -1;
}

NetnsCache::NetnsCache(size_t per_function, size_t max_total, SteadyClock::duration linger)
    : per_function_(per_function), max_total_(max_total), linger_(linger) {
  checker_ = std::thread([this] { CheckLoop(); });
}

NetnsCache::~NetnsCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (checker_.joinable()) checker_.join();
  for (auto& [key, e] : entries_)
    for (auto& ns : e.ready) close(ns.fd);
  for (auto& r : returned_) close(r.ns.fd);
}

PooledNetns NetnsCache::Take(const std::string& key, const std::string& generation) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.used_at = SteadyClock::now();
  if (e.generation != generation) {  // another deployment's: never this one's
    for (auto& ns : e.ready) DiscardLocked(&ns);
    e.ready.clear();
    e.generation = generation;
    return {};
  }
  if (e.ready.empty()) return {};
  PooledNetns ns = std::move(e.ready.front());
  e.ready.pop_front();
  ++counts_.reused;
  return ns;
}

void NetnsCache::Give(const std::string& key, const std::string& generation, PooledNetns used) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (stopping_ || it == entries_.end() || it->second.generation != generation) {
      DiscardLocked(&used);
      return;
    }
    it->second.used_at = SteadyClock::now();
    returned_.push_back({key, generation, std::move(used), 0, SteadyClock::now()});
  }
  cv_.notify_all();
}

void NetnsCache::Forget(const std::string& function) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const std::string& key = it->first;
    if (key != function && key.rfind(function + ":", 0) != 0) {
      ++it;
      continue;
    }
    for (auto& ns : it->second.ready) DiscardLocked(&ns);
    it = entries_.erase(it);  // what its instances give back later finds no entry: closed
  }
}

NetnsCounts NetnsCache::counts() {
  std::lock_guard lock(mu_);
  NetnsCounts c = counts_;
  c.cached = TotalLocked();
  return c;
}

size_t NetnsCache::TotalLocked() const {
  size_t n = 0;
  for (const auto& [key, e] : entries_) n += e.ready.size();
  return n;
}

void NetnsCache::DiscardLocked(PooledNetns* ns) {
  if (ns->fd < 0) return;
  close(ns->fd);  // the last reference: the kernel removes the namespace and its eth0's veth
  ns->fd = -1;
  ++counts_.discarded;
}

void NetnsCache::ExpireLocked(SteadyClock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.used_at < linger_) {
      ++it;
      continue;
    }
    for (auto& ns : it->second.ready) DiscardLocked(&ns);
    it = entries_.erase(it);
  }
}

void NetnsCache::Keep(Returned r) {
  auto it = entries_.find(r.key);
  // Its function changed or went while it was checked.
  if (stopping_ || it == entries_.end() || it->second.generation != r.generation ||
      it->second.ready.size() >= per_function_) {
    DiscardLocked(&r.ns);
    return;
  }
  if (TotalLocked() >= max_total_) {
    // Room from the function started least recently (this one's own when it is that one).
    Entry* oldest = nullptr;
    for (auto& [key, e] : entries_)
      if (!e.ready.empty() && (!oldest || e.used_at < oldest->used_at)) oldest = &e;
    if (!oldest || oldest == &it->second) {
      DiscardLocked(&r.ns);
      return;
    }
    DiscardLocked(&oldest->ready.front());
    oldest->ready.pop_front();
  }
  it->second.ready.push_back(std::move(r.ns));
}

NetnsCache::Verdict NetnsCache::Inspect(const PooledNetns& ns, std::string* why) {
  if (setns(ns.fd, CLONE_NEWNET) != 0) {
    *why = "setns: " + std::string(strerror(errno));
    return Verdict::kUnclean;
  }
  auto state = sandbox::net::ReadNetnsState();
  if (!state) {
    *why = state.error().ToString();
    return Verdict::kUnclean;
  }
  // Its interfaces and routes are checked as a tripwire, not relied on: changing an address, a
  // route, a link or a sysctl of the namespace takes CAP_NET_ADMIN in the user namespace that owns
  // it (the host's), which no instance has (all capabilities dropped, no user namespace of its
  // own: seccomp refuses unshare, setns and namespace flags on clone).
  const bool egress = !ns.veth.empty();
  const std::vector<std::string> interfaces = egress ? std::vector<std::string>{"eth0", "lo"}
                                                     : std::vector<std::string>{"lo"};
  if (state->interfaces != interfaces || state->ipv4_routes != (egress ? 2u : 0u)) {
    *why = std::to_string(state->interfaces.size()) + " interfaces, " + std::to_string(state->ipv4_routes) +
           " routes";
    return Verdict::kUnclean;
  }
  if (state->time_wait > kMaxTimeWait) {  // not worth a round trip each
    *why = std::to_string(state->time_wait) + " connections in TIME_WAIT";
    return Verdict::kUnclean;
  }
  if (state->time_wait > 0) {
    // The predecessor's connections in TIME_WAIT (60 s) would show in the next instance's
    // /proc/net/tcp: they go as at the namespace's destruction, and it is read again after the
    // netlink socket that removed them is freed.
    auto removed = sandbox::net::DestroyTimeWait();
    if (!removed) {
      *why = std::to_string(state->time_wait) + " connections in TIME_WAIT, not removed: " + removed.error().ToString();
      return Verdict::kUnclean;
    }
    std::lock_guard lock(mu_);
    counts_.time_wait_removed += static_cast<uint64_t>(*removed);
    *why = std::to_string(state->time_wait) + " connections in TIME_WAIT";
    return Verdict::kClosing;
  }
  if (!state->quiet()) {
    *why = std::to_string(state->sockets) + " sockets (" + std::to_string(state->inet) + " inet), " +
           std::to_string(state->fragments) + " fragment queues";
    return Verdict::kClosing;
  }
  return Verdict::kClean;
}

void NetnsCache::CheckLoop() {
  const int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  bool away = false;  // this thread is in an instance's namespace (it holds it alive meanwhile)
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = SteadyClock::now();
    ExpireLocked(now);
    // The first one due (those waiting for their sockets to close go to the back).
    auto due = returned_.end();
    auto next = now + linger_;
    for (auto it = returned_.begin(); it != returned_.end(); ++it) {
      if (it->due <= now) {
        due = it;
        break;
      }
      next = std::min(next, it->due);
    }
    if (due == returned_.end()) {
      if (away) {
        lock.unlock();
        if (home >= 0 && setns(home, CLONE_NEWNET) == 0) away = false;
        lock.lock();
        continue;
      }
      cv_.wait_until(lock, next);
      continue;
    }
    Returned r = std::move(*due);
    returned_.erase(due);
    lock.unlock();
    std::string why;
    Verdict v = home < 0 ? Verdict::kUnclean : Inspect(r.ns, &why);
    if (home < 0) why = "the checker cannot return to the host's namespace";
    away = true;
    lock.lock();
    if (v == Verdict::kClosing && ++r.checks < kChecks) {
      r.due = SteadyClock::now() + kRecheck;
      returned_.push_back(std::move(r));
      continue;
    }
    if (v != Verdict::kClean) {
      // Said now and then, not per instance: a function that makes connections leaves TIME_WAIT
      // behind at every end.
      if (counts_.unclean++ % 100 == 0)
        log::Info("net namespace of an ended instance of " + r.key + " not reused: " + why + " (" +
                  std::to_string(counts_.unclean) + " so far)");
      DiscardLocked(&r.ns);
      continue;
    }
    Keep(std::move(r));
  }
  if (home >= 0) close(home);
}

}  // namespace forklet::core
