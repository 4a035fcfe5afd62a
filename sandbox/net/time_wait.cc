// A dump of the TIME_WAIT entries (SOCK_DIAG_BY_FAMILY), then one SOCK_DESTROY per entry, by its id.
#include "sandbox/net/time_wait.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace forklet::sandbox::net {
namespace {

struct Request {
  nlmsghdr nh;
  inet_diag_req_v2 req;
};

bool Send(int fd, uint16_t type, uint16_t flags, const inet_diag_req_v2& req) {
  Request r{};
  r.nh.nlmsg_len = sizeof(r);
  r.nh.nlmsg_type = type;
  r.nh.nlmsg_flags = flags;
  r.req = req;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  return sendto(fd, &r, sizeof(r), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) == sizeof(r);
}

// Reads replies until NLMSG_DONE (a dump) or the first ack/error; collects dumped entries' ids.
// Returns 0 or the errno the kernel answered with.
int Receive(int fd, std::vector<inet_diag_sockid>* ids) {
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;  // 0: an ack
      }
      if (ids && h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg)))
        ids->push_back(static_cast<inet_diag_msg*>(NLMSG_DATA(h))->id);
    }
  }
}

}  // namespace

Result<int> DestroyTimeWait() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return SysError("sock_diag socket");
  int destroyed = 0;
  for (uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
    inet_diag_req_v2 req{};
    req.sdiag_family = family;
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = 1u << TCP_TIME_WAIT;
    std::vector<inet_diag_sockid> ids;
    if (!Send(fd, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, req)) {
      int e = errno;
      close(fd);
      return SysError("sock_diag dump", e);
    }
    if (int e = Receive(fd, &ids); e != 0) {
      close(fd);
      return SysError("sock_diag dump", e);
    }
    for (const auto& id : ids) {
      req.id = id;
      if (!Send(fd, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, req)) {
        int e = errno;
        close(fd);
        return SysError("sock_diag destroy", e);
      }
      int e = Receive(fd, nullptr);
      if (e == 0)
        ++destroyed;
      else if (e != ENOENT) {  // ENOENT: it expired meanwhile
        close(fd);
        return SysError("sock_diag destroy", e);
      }
    }
  }
  close(fd);
  return destroyed;
}

}  // namespace forklet::sandbox::net
