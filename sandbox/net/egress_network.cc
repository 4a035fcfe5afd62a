// The bridge, the rules and the veths of instances' outbound network (docs/network.md).
#include "sandbox/net/egress_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "sandbox/net/nft.h"

namespace forklet::sandbox::net {
namespace {

constexpr int kSubnetLen = 22;  // each daemon's: 1021 instances
constexpr const char* kForward = "/proc/sys/net/ipv4/ip_forward";

uint32_t Mask(int len) { return len <= 0 ? 0 : 0xffffffffu << (32 - len); }

bool ParseCidr(const std::string& text, uint32_t* base, int* len) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return false;
  in_addr a{};
  if (inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return false;
  char* end = nullptr;
  long l = strtol(text.c_str() + slash + 1, &end, 10);
  if (*end || l < 8 || l > kSubnetLen) return false;
  *len = static_cast<int>(l);
  *base = ntohl(a.s_addr) & Mask(*len);
  return true;
}

std::string Dotted(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

Mac MacOf(uint32_t addr) {  // locally administered, the address in its last four bytes
  return {0x02, 0xf0, uint8_t(addr >> 24), uint8_t(addr >> 16), uint8_t(addr >> 8), uint8_t(addr)};
}

std::string MacText(const Mac& m) {
  char buf[18];
  snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

bool Overlaps(uint32_t a, int alen, uint32_t b, int blen) {
  uint32_t m = Mask(std::min(alen, blen));
  return (a & m) == (b & m);
}

// Does net/len collide with an IPv4 address or route of the host?
bool InUse(uint32_t net, int len) {
  ifaddrs* list = nullptr;
  bool used = false;
  if (getifaddrs(&list) == 0) {
    for (auto* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      uint32_t m = i->ifa_netmask ? ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr) : ~0u;
      if (Overlaps(a, __builtin_popcount(m), net, len)) used = true;
    }
    freeifaddrs(list);
  }
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream in(line);
    std::string iface;
    unsigned dest = 0, gw = 0, flags = 0, refcnt = 0, use = 0, metric = 0, mask = 0;
    if (!(in >> iface >> std::hex >> dest >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
    if (mask == 0) continue;  // the default route covers everything: not a collision
    if (Overlaps(ntohl(dest), __builtin_popcount(mask), net, len)) used = true;
  }
  return used;
}

// Held while the range is allocated and while forwarding is switched (all daemons of the host).
class RunLock {
 public:
  explicit RunLock(const std::string& dir) {
    mkdir(dir.c_str(), 0755);
    fd_ = open((dir + "/network.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~RunLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

bool IsForkletBridge(const std::string& name) {
  if (name.size() != 10 || name.compare(0, 2, "fk") != 0 || name.compare(8, 2, "br") != 0) return false;
  for (size_t i = 2; i < 8; ++i)
    if (!isxdigit(static_cast<unsigned char>(name[i]))) return false;
  return true;
}

// Turns forwarding back off if forklet turned it on and no forklet bridge other than `except` remains.
void MaybeRestoreForwarding(Rtnetlink& host, const std::string& run_dir, const std::string& except) {
  const std::string note = run_dir + "/ip_forward.restore";
  if (access(note.c_str(), F_OK) != 0) return;
  auto links = host.Links();
  if (!links) return;
  for (const auto& l : *links)
    if (IsForkletBridge(l.name) && l.name != except) return;
  std::ofstream(kForward) << "0\n";
  unlink(note.c_str());
}

}  // namespace

std::optional<NetworkMode> ParseNetworkMode(const std::string& text) {
  if (text == "egress") return NetworkMode::kEgress;
  if (text == "none") return NetworkMode::kNone;
  return std::nullopt;
}

const char* NetworkModeName(NetworkMode mode) { return mode == NetworkMode::kEgress ? "egress" : "none"; }

std::string BridgeName(const std::string& id) { return "fk" + id + "br"; }
std::string VethPrefix(const std::string& id) { return "fk" + id + "v"; }
std::string TableName(const std::string& id) { return "forklet_" + id; }

std::string EgressNetwork::subnet() const { return Dotted(ntohl(base_.s_addr)) + "/" + std::to_string(prefix_len_); }

namespace {
bool ValidId(const std::string& id) {
  if (id.size() != 6) return false;
  for (char c : id)
    if (!isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

Result<int> EgressNetwork::RemoveStale(const EgressOptions& options, bool tables) {
  // The id is the prefix of what goes: never anything but a daemon's own six hex digits.
  if (!ValidId(options.id)) return MakeError("function network", "bad daemon id '" + options.id + "'");
  auto host = Rtnetlink::Open();
  if (!host) return host.error();
  RunLock lock(options.run_dir);
  int removed = 0;
  auto links = host->Links();
  if (!links) return links.error();
  const std::string own = "fk" + options.id;
  // Veths first: a bridge's ports would otherwise outlive it as loose links.
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& l : *links) {
      if (l.name.compare(0, own.size(), own) != 0) continue;
      if ((pass == 0) == (l.name == BridgeName(options.id))) continue;
      if (host->DeleteLink(l.name)) ++removed;
    }
  const std::string table = TableName(options.id);
  if (tables) {
    if (auto s = RunNft(DeleteTableScript("inet", table) + DeleteTableScript("bridge", table), options.nft); !s)
      return s.error();
  }
  MaybeRestoreForwarding(*host, options.run_dir, "");
  return removed;
}

Result<std::unique_ptr<EgressNetwork>> EgressNetwork::Create(const EgressOptions& options) {
  if (auto stale = RemoveStale(options, false); !stale) return stale.error();  // RulesScript replaces the tables
  std::unique_ptr<EgressNetwork> n(new EgressNetwork());
  n->options_ = options;
  n->bridge_ = BridgeName(options.id);
  n->prefix_ = VethPrefix(options.id);
  n->table_ = TableName(options.id);
  if (auto s = n->Setup(); !s) return s.error();  // the destructor removes what was made
  return n;
}

Status EgressNetwork::Setup() {
  uint32_t pool = 0;
  int pool_len = 0;
  if (!ParseCidr(options_.pool, &pool, &pool_len))
    return MakeError("function network", "the pool '" + options_.pool + "' is not an IPv4 range a.b.c.d/N with N from 8 to 22");
  auto host = Rtnetlink::Open();
  if (!host) return host.error();
  host_.emplace(std::move(host.value()));
  RunLock lock(options_.run_dir);
  const uint32_t slots = 1u << (kSubnetLen - pool_len);
  bool found = false;
  for (uint32_t i = 0; i < slots && !found; ++i) {
    uint32_t net = pool + (i << (32 - kSubnetLen));
    if (InUse(net, kSubnetLen)) continue;
    base_.s_addr = htonl(net);
    gateway_.s_addr = htonl(net + 1);
    found = true;
  }
  if (!found)
    return MakeError("function network", "every /22 of " + options_.pool +
                                             " is in use on this host: choose another range with --function-network-pool");
  prefix_len_ = kSubnetLen;
  // The gateway's MAC is set, not left to the kernel: a bridge without one takes the lowest of its
  // ports' and changes it as instances come and go, and instances that cached the old one lose
  // their way out until their ARP entry expires.
  if (auto s = host_->CreateBridge(bridge_, MacOf(ntohl(gateway_.s_addr))); !s) return s;
  auto index = host_->IndexOf(bridge_);
  if (!index) return index.error();
  bridge_index_ = *index;
  // Instances get IPv4 only; the bridge's IPv6 link-local address would be one more way to the host.
  std::ofstream("/proc/sys/net/ipv6/conf/" + bridge_ + "/disable_ipv6") << "1\n";
  if (auto s = host_->AddAddress(bridge_index_, gateway_, prefix_len_); !s) return s;
  if (auto s = host_->SetUp(bridge_index_); !s) return s;
  if (auto s = RunNft(RulesScript(), options_.nft); !s) return s;
  int forward = 0;
  std::ifstream(kForward) >> forward;
  if (forward == 0) {
    std::ofstream(options_.run_dir + "/ip_forward.restore") << "0\n";
    std::ofstream out(kForward);
    out << "1\n";
    out.close();
    if (!out) return SysError(std::string("write ") + kForward);
  }
  forward_enabled_ = true;
  return {};
}

std::string EgressNetwork::RulesScript() const {
  const uint32_t net = ntohl(base_.s_addr);
  const uint32_t last = net + (1u << (32 - prefix_len_)) - 2;  // below the broadcast address
  const std::string sub = subnet(), br = "\"" + bridge_ + "\"", ports = "\"" + prefix_ + "*\"";
  std::ostringstream s;
  s << DeleteTableScript("inet", table_) << DeleteTableScript("bridge", table_);
  // Layer 2, per bridge port: only the MAC and address forklet gave that veth, only IPv4 and ARP.
  s << "table bridge " << table_ << " {\n"
    << "  set ports {\n    type ifname . ether_addr . ipv4_addr\n    elements = {";
  for (uint32_t a = net + 2; a <= last; ++a)
    s << (a == net + 2 ? " " : ",\n      ") << "\"" << prefix_ << (a - net) << "\" . " << MacText(MacOf(a)) << " . "
      << Dotted(a);
  s << " }\n  }\n"
    << "  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n"
    << "    iifname != " << ports << " accept\n"
    << "    ether type ip iifname . ether saddr . ip saddr @ports accept\n"
    << "    ether type arp iifname . ether saddr . arp saddr ip @ports iifname . arp saddr ether . arp saddr ip @ports accept\n"
    << "    drop\n  }\n}\n";
  // Layer 3: nothing from the bridge to the host itself (any address), nowhere but out.
  s << "table inet " << table_ << " {\n"
    << "  chain input {\n    type filter hook input priority filter - 10; policy accept;\n"
    << "    iifname " << br << " drop\n  }\n"
    << "  chain forward {\n    type filter hook forward priority filter - 10; policy accept;\n"
    << "    iifname " << br << " jump from_instances\n"
    << "    oifname " << br << " ct state established,related accept\n"
    << "    oifname " << br << " drop\n  }\n"
    << "  chain from_instances {\n"
    << "    meta nfproto != ipv4 drop\n"
    << "    ip saddr != " << sub << " drop\n"
    << "    ct state invalid drop\n"
    << "    ip daddr { 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/3, " << options_.pool << " } drop\n"
    << "    fib daddr type { local, broadcast, multicast } drop\n"
    << "  }\n"
    << "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
    << "    ip saddr " << sub << " oifname != " << br << " masquerade\n  }\n}\n";
  return s.str();
}

Result<std::string> EgressNetwork::Attach(int ns_fd, Rtnetlink& inside) {
  const uint32_t net = ntohl(base_.s_addr);
  const uint32_t hosts = (1u << (32 - prefix_len_)) - 2;  // .1 .. broadcast-1
  std::string name;
  uint32_t addr = 0;
  {
    std::lock_guard lock(mu_);
    Status made = MakeError("attach", "no free address");
    for (uint32_t tries = 0; tries < hosts; ++tries) {
      if (next_ > hosts) next_ = 2;
      uint32_t n = next_++;
      name = prefix_ + std::to_string(n);
      addr = net + n;
      // A name in use: the instance that had it is gone but its namespace is still being torn down.
      made = host_->CreateVethInto("eth0", MacOf(addr), ns_fd, name);
      if (made || made.error().err != EEXIST) break;
    }
    if (!made) return made.error();
    auto index = host_->IndexOf(name);
    Status s = index ? Status{} : Status(index.error());
    // A bridge port needs no IPv6 of its own: without it, bringing it up adds no link-local
    // address, DAD, multicast membership or routes to the host's tables, and removing it has none
    // to walk (half the kernel's work of an instance's network, measured: docs/network.md).
    if (s) std::ofstream("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6") << "1\n";
    if (s) s = host_->SetUp(*index, bridge_index_);
    if (s) s = host_->IsolatePort(*index);
    in_addr a{htonl(addr)};
    if (s) s = host_->AddPermanentNeighbour(bridge_index_, a, MacOf(addr));
    if (!s) {
      (void)host_->DeleteLink(name);
      return s.error();
    }
  }
  in_addr a{htonl(addr)};
  auto eth0 = inside.IndexOf("eth0");
  Status s = eth0 ? Status{} : Status(eth0.error());
  if (s) s = inside.AddAddress(*eth0, a, prefix_len_);
  if (s) s = inside.SetUp(*eth0);
  if (s) s = inside.AddDefaultRoute(*eth0, gateway_);
  if (!s) {
    (void)Detach(name);
    return s.error();
  }
  return name;
}

Status EgressNetwork::Detach(const std::string& veth) {
  std::lock_guard lock(mu_);
  return host_->DeleteLink(veth);
}

EgressNetwork::~EgressNetwork() {
  if (!host_) return;
  RunLock lock(options_.run_dir);
  (void)RunNft(DeleteTableScript("inet", table_) + DeleteTableScript("bridge", table_), options_.nft);
  if (auto links = host_->Links(); links)
    for (const auto& l : *links)
      if (l.name.compare(0, prefix_.size(), prefix_) == 0) (void)host_->DeleteLink(l.name);
  (void)host_->DeleteLink(bridge_);
  if (forward_enabled_) MaybeRestoreForwarding(*host_, options_.run_dir, bridge_);
}

}  // namespace forklet::sandbox::net
