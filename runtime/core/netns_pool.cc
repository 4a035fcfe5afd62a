// The filler thread moves itself into each new namespace (network namespaces are per thread),
// brings lo up there, keeps an fd, and returns home.
#include "runtime/core/netns_pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace forklet::core {

NetnsPool::NetnsPool(size_t target) : target_(target) {
  if (target_ > 0) filler_ = std::thread([this] { Fill(); });
}

NetnsPool::~NetnsPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (filler_.joinable()) filler_.join();
  for (int fd : ready_) close(fd);
}

int NetnsPool::Take() {
  std::lock_guard lock(mu_);
  if (ready_.empty()) return -1;
  int fd = ready_.front();
  ready_.pop_front();
  cv_.notify_all();
  return fd;
}

int NetnsPool::CreateOne(int home_fd) {
  if (unshare(CLONE_NEWNET) != 0) return -1;
  int ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
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
  if (setns(home_fd, CLONE_NEWNET) != 0) {
    // Stranded in a namespace of our own: stop filling rather than hand out the wrong thing.
    perror("forkletd: netns pool: cannot return to the host network namespace");
    if (ns >= 0) close(ns);
    return -2;
  }
  if (!up && ns >= 0) {
    close(ns);
    return -1;
  }
  return ns;
}

void NetnsPool::Fill() {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (ready_.size() >= target_) {
      cv_.wait(lock);
      continue;
    }
    lock.unlock();
    int fd = CreateOne(home);
    lock.lock();
    if (fd == -2) break;
    if (fd < 0) {  // e.g. out of resources: back off instead of spinning
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    ready_.push_back(fd);
  }
  close(home);
}

}  // namespace forklet::core
