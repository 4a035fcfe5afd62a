// Hand-written rtnetlink requests (what `ip link/addr/route/neigh` send), one ack each.
#include "sandbox/net/rtnetlink.h"

#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace forklet::sandbox::net {
namespace {

// One request: a header, its fixed part, then attributes (nests close in reverse order).
class Message {
 public:
  Message(uint16_t type, uint16_t flags) {
    h()->nlmsg_len = NLMSG_LENGTH(0);
    h()->nlmsg_type = type;
    h()->nlmsg_flags = NLM_F_REQUEST | flags;
  }
  nlmsghdr* h() { return reinterpret_cast<nlmsghdr*>(buf_); }
  template <typename T>
  T* Fixed() {  // the family's header (ifinfomsg, ...), right after nlmsghdr
    T* t = reinterpret_cast<T*>(buf_ + h()->nlmsg_len);
    h()->nlmsg_len += NLMSG_ALIGN(sizeof(T));
    return t;
  }
  void Put(uint16_t type, const void* data, size_t len) {
    auto* a = reinterpret_cast<nlattr*>(buf_ + NLMSG_ALIGN(h()->nlmsg_len));
    a->nla_type = type;
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    if (len) memcpy(reinterpret_cast<char*>(a) + NLA_HDRLEN, data, len);
    h()->nlmsg_len = NLMSG_ALIGN(h()->nlmsg_len) + NLA_ALIGN(a->nla_len);
  }
  void PutString(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, sizeof(v)); }
  void PutU8(uint16_t type, uint8_t v) { Put(type, &v, sizeof(v)); }
  nlattr* Begin(uint16_t type) {
    auto* a = reinterpret_cast<nlattr*>(buf_ + NLMSG_ALIGN(h()->nlmsg_len));
    Put(type | NLA_F_NESTED, nullptr, 0);
    return a;
  }
  void End(nlattr* a) { a->nla_len = static_cast<uint16_t>(buf_ + h()->nlmsg_len - reinterpret_cast<char*>(a)); }

 private:
  alignas(nlmsghdr) char buf_[1024] = {};
};

}  // namespace

Result<Rtnetlink> Rtnetlink::Open() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return SysError("netlink socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int e = errno;
    close(fd);
    return SysError("netlink bind", e);
  }
  return Rtnetlink(fd);
}

Rtnetlink& Rtnetlink::operator=(Rtnetlink&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    seq_ = o.seq_;
    o.fd_ = -1;
  }
  return *this;
}

Rtnetlink::~Rtnetlink() {
  if (fd_ >= 0) close(fd_);
}

Status Rtnetlink::Talk(void* msg, const std::string& what, std::vector<Link>* links) {
  auto* h = static_cast<nlmsghdr*>(msg);
  h->nlmsg_seq = ++seq_;
  // A dump ends with NLMSG_DONE; anything else is acked. (NLM_F_EXCL shares its bit with NLM_F_MATCH.)
  const bool dump = h->nlmsg_type == RTM_GETLINK && (h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) h->nlmsg_flags |= NLM_F_ACK;
  if (send(fd_, h, h->nlmsg_len, 0) != static_cast<ssize_t>(h->nlmsg_len)) return SysError(what);
  alignas(nlmsghdr) static thread_local char buf[32768];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError(what);
    }
    int len = static_cast<int>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_) continue;  // a late answer to an earlier request
      if (r->nlmsg_type == NLMSG_DONE) return {};
      if (r->nlmsg_type == NLMSG_ERROR) {
        int e = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
        if (e == 0) return {};
        return SysError(what, e);
      }
      if (links && r->nlmsg_type == RTM_NEWLINK) {
        auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(r));
        int len = static_cast<int>(r->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
        for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
          if (a->rta_type == IFLA_IFNAME)
            links->push_back({ifi->ifi_index, static_cast<const char*>(RTA_DATA(a))});
      }
    }
  }
}

Status Rtnetlink::CreateBridge(const std::string& name, const Mac& mac) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.PutString(IFLA_IFNAME, name);
  m.Put(IFLA_ADDRESS, mac.data(), mac.size());
  auto* info = m.Begin(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_KIND, "bridge");
  m.End(info);
  return Talk(m.h(), "create bridge " + name);
}

Status Rtnetlink::CreateVethInto(const std::string& inside, const Mac& mac, int ns_fd,
                                 const std::string& outside) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.PutString(IFLA_IFNAME, inside);
  m.Put(IFLA_ADDRESS, mac.data(), mac.size());
  m.PutU32(IFLA_NET_NS_FD, static_cast<uint32_t>(ns_fd));
  auto* info = m.Begin(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_KIND, "veth");
  auto* data = m.Begin(IFLA_INFO_DATA);
  auto* peer = m.Begin(VETH_INFO_PEER);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.PutString(IFLA_IFNAME, outside);
  m.End(peer);
  m.End(data);
  m.End(info);
  return Talk(m.h(), "create veth " + outside);
}

Status Rtnetlink::SetUp(int index, int master_index) {
  Message m(RTM_NEWLINK, 0);
  auto* ifi = m.Fixed<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (master_index > 0) m.PutU32(IFLA_MASTER, static_cast<uint32_t>(master_index));
  return Talk(m.h(), "set link " + std::to_string(index) + " up");
}

Status Rtnetlink::IsolatePort(int index) {
  Message m(RTM_NEWLINK, 0);
  auto* ifi = m.Fixed<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  auto* info = m.Begin(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_SLAVE_KIND, "bridge");
  auto* data = m.Begin(IFLA_INFO_SLAVE_DATA);
  m.PutU8(IFLA_BRPORT_ISOLATED, 1);
  m.End(data);
  m.End(info);
  return Talk(m.h(), "isolate bridge port " + std::to_string(index));
}

Status Rtnetlink::AddAddress(int index, in_addr addr, int prefix_len) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = m.Fixed<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  m.Put(IFA_LOCAL, &addr, sizeof(addr));
  m.Put(IFA_ADDRESS, &addr, sizeof(addr));
  in_addr brd{addr.s_addr | htonl(prefix_len >= 32 ? 0u : 0xffffffffu >> prefix_len)};
  m.Put(IFA_BROADCAST, &brd, sizeof(brd));
  return Talk(m.h(), "add address to link " + std::to_string(index));
}

Status Rtnetlink::AddDefaultRoute(int index, in_addr gateway) {
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rt = m.Fixed<rtmsg>();
  rt->rtm_family = AF_INET;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  m.Put(RTA_GATEWAY, &gateway, sizeof(gateway));
  m.PutU32(RTA_OIF, static_cast<uint32_t>(index));
  return Talk(m.h(), "add default route");
}

Status Rtnetlink::AddPermanentNeighbour(int index, in_addr addr, const Mac& mac) {
  Message m(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* nd = m.Fixed<ndmsg>();
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = index;
  nd->ndm_state = NUD_PERMANENT;
  m.Put(NDA_DST, &addr, sizeof(addr));
  m.Put(NDA_LLADDR, mac.data(), mac.size());
  return Talk(m.h(), "add neighbour");
}

Status Rtnetlink::DeleteLink(const std::string& name) {
  Message m(RTM_DELLINK, 0);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.PutString(IFLA_IFNAME, name);
  return Talk(m.h(), "delete link " + name);
}

Result<std::vector<Rtnetlink::Link>> Rtnetlink::Links() {
  Message m(RTM_GETLINK, NLM_F_DUMP);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  std::vector<Link> out;
  if (auto s = Talk(m.h(), "list links", &out); !s) return s.error();
  return out;
}

Result<int> Rtnetlink::IndexOf(const std::string& name) {
  Message m(RTM_GETLINK, 0);
  m.Fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.PutString(IFLA_IFNAME, name);
  std::vector<Link> out;
  if (auto s = Talk(m.h(), "find link " + name, &out); !s) {
    if (s.error().err == ENODEV) return 0;
    return s.error();
  }
  return out.empty() ? 0 : out[0].index;
}

}  // namespace forklet::sandbox::net
