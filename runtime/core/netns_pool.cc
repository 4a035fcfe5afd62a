// The filler thread moves itself into each new namespace (network namespaces are per thread),
// brings lo up and opens an rtnetlink socket there, keeps an fd, and returns home; the egress
// network then gives the namespace its eth0 from the host side and configures it through that socket.
#include "runtime/core/netns_pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "runtime/log/log.h"

namespace forklet::core {

NetnsPool::NetnsPool(size_t target, sandbox::net::EgressNetwork* egress) : target_(target), egress_(egress) {
  if (target_ > 0) filler_ = std::thread([this] { Fill(); });
}

NetnsPool::~NetnsPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (filler_.joinable()) filler_.join();
  for (auto& ns : ready_) close(ns.fd);
}

PooledNetns NetnsPool::Take() {
  std::lock_guard lock(mu_);
  if (ready_.empty()) return {};
  PooledNetns ns = std::move(ready_.front());
  ready_.pop_front();
  cv_.notify_all();
  return ns;
}

Result<PooledNetns> NetnsPool::Make() {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return SysError("open own net namespace");
  bool stranded = false;
  auto ns = CreateOne(home, &stranded);
  close(home);
  if (stranded) abort();  // this thread would serve requests from an instance's namespace
  return ns;
}

Result<PooledNetns> NetnsPool::CreateOne(int home_fd, bool* stranded) {
  if (unshare(CLONE_NEWNET) != 0) return SysError("unshare net namespace");
  int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int e = errno;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool up = false;
  if (sock >= 0) {
    struct ifreq ifr {};
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
      up = ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
    }
    close(sock);
  }
  // /proc/sys/net is the opening thread's namespace's.
  int metrics = open("/proc/sys/net/ipv4/tcp_no_metrics_save", O_WRONLY | O_CLOEXEC);
  if (metrics >= 0) {
    (void)!write(metrics, "1\n", 2);
    close(metrics);
  }
  std::optional<Result<sandbox::net::Rtnetlink>> inside;
  if (egress_) {
    // IPv4 only out: eth0 (made later) gets no IPv6, not even a link-local address.
    int v6 = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
    if (v6 >= 0) {
      (void)!write(v6, "1\n", 2);
      close(v6);
    }
    inside.emplace(sandbox::net::Rtnetlink::Open());
  }
  if (setns(home_fd, CLONE_NEWNET) != 0) {
    // Stranded in a namespace of our own: stop rather than hand out the wrong thing.
    perror("forkletd: netns pool: cannot return to the host network namespace");
    *stranded = true;
    if (ns >= 0) close(ns);
    return SysError("return to the host net namespace");
  }
  if (ns < 0) return SysError("open new net namespace", e);
  if (!up) {
    close(ns);
    return MakeError("net namespace", "cannot bring lo up");
  }
  PooledNetns out{ns, {}};
  if (egress_) {
    if (!*inside) {
      close(ns);
      return inside->error();
    }
    auto veth = egress_->Attach(ns, inside->value());
    if (!veth) {
      close(ns);
      return veth.error();
    }
    out.veth = std::move(veth.value());
  }
  ++made_;
  return out;
}

void NetnsPool::Fill() {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return;
  std::unique_lock lock(mu_);
  bool warned = false;
  while (!stopping_) {
    if (ready_.size() >= target_) {
      cv_.wait(lock);
      continue;
    }
    lock.unlock();
    bool stranded = false;
    auto ns = CreateOne(home, &stranded);
    lock.lock();
    if (stranded) break;
    if (!ns) {  // e.g. out of resources: back off instead of spinning
      if (!warned) log::Warning("netns pool: " + ns.error().ToString());
      warned = true;
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    warned = false;
    ready_.push_back(std::move(ns.value()));
  }
  close(home);
}

}  // namespace forklet::core
