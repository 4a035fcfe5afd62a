// Instances' network with real traffic: a net namespace of the test's own plays the internet (an
// HTTP server routed through the host); functions fetch from it, and fail to reach the host, the
// daemon, each other, link-local addresses, or anything at all with FORKLET_NETWORK=none. The
// daemon leaves no interface, route or nftables table behind, also after kill -9 and a restart.
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kIp = "/usr/sbin/ip";

CmdResult Ip(std::vector<std::string> args) {
  args.insert(args.begin(), kIp);
  return Run(args, {}, 30);
}

// "The internet": a namespace with an HTTP server on 198.18.N.2 (and on 169.254.77.77, a link-local
// address the host routes to it), joined to the host by a veth. Removed whatever happens.
class Internet {
 public:
  Internet() {
    const std::string n = std::to_string(getpid() % 200 + 20);
    host_addr_ = "198.18." + n + ".1";
    addr_ = "198.18." + n + ".2";
    ns_ = "fktest-inet-" + std::to_string(getpid());
    link_ = "fktest" + std::to_string(getpid() % 100000);
    dir_ = "/tmp/forklet-test-inet-" + std::to_string(getpid());
    fs::create_directories(dir_);
    token_ = "hello from the internet " + std::to_string(getpid());
    std::ofstream(dir_ + "/hello.txt") << token_;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"netns", "add", ns_},
             {"link", "add", link_, "type", "veth", "peer", "name", "eth0", "netns", ns_},
             {"addr", "add", host_addr_ + "/30", "dev", link_},
             {"link", "set", link_, "up"},
             {"-n", ns_, "link", "set", "lo", "up"},
             {"-n", ns_, "addr", "add", addr_ + "/30", "dev", "eth0"},
             {"-n", ns_, "addr", "add", std::string(kLinkLocal) + "/32", "dev", "eth0"},
             {"-n", ns_, "link", "set", "eth0", "up"},
             {"-n", ns_, "route", "add", "default", "via", host_addr_},
             {"route", "add", std::string(kLinkLocal) + "/32", "via", addr_, "dev", link_}}) {
      auto r = Ip(cmd);
      if (r.exit_code != 0) {
        error_ = "ip " + cmd[0] + " " + cmd[1] + ": " + r.err;
        return;
      }
    }
    server_ = InNamespace({"/usr/bin/python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", dir_});
    // UDP on 9999: each datagram's payload, one a line, with the source it came from.
    udp_ = InNamespace({"/usr/bin/python3", "-c",
                        "import socket, sys\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                        "s.bind(('0.0.0.0', 9999))\n"
                        "f = open(sys.argv[1], 'a')\n"
                        "while True:\n"
                        "    d, a = s.recvfrom(200)\n"
                        "    f.write(d.decode() + ' from ' + a[0] + '\\n')\n"
                        "    f.flush()\n",
                        dir_ + "/udp.log"});
    for (int i = 0; i < 100; ++i) {  // the host itself reaches it: the route works
      if (HostFetch(addr_) == token_ && HostFetch(kLinkLocal) == token_) return;
      usleep(100000);
    }
    error_ = "the test's HTTP server did not answer the host";
  }
  ~Internet() {
    for (pid_t p : {server_, udp_})
      if (p > 0) {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
    (void)Ip({"route", "del", std::string(kLinkLocal) + "/32"});
    (void)Ip({"link", "del", link_});
    (void)Ip({"netns", "del", ns_});
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  pid_t InNamespace(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {kIp, "netns", "exec", ns_});
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    posix_spawn(&pid, kIp, &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
  }
  // The UDP datagrams that arrived ("payload from source" lines).
  std::string Datagrams() const {
    std::ifstream in(dir_ + "/udp.log");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  static std::string HostFetch(const std::string& addr) {
    return Run({"/usr/bin/curl", "-s", "-m", "2", "http://" + addr + ":8080/hello.txt"}, {}, 10).out;
  }
  std::string Url(const std::string& addr) const { return "http://" + addr + ":8080/hello.txt"; }

  static constexpr const char* kLinkLocal = "169.254.77.77";
  std::string error_, host_addr_, addr_, ns_, link_, dir_, token_;
  pid_t server_ = -1, udp_ = -1;
};

// The host's own IPv4 addresses (every interface's).
std::vector<std::string> HostAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof(buf));
    out.push_back(buf);
  }
  freeifaddrs(list);
  return out;
}

// A TCP server on every host address that counts who reached it.
class HostServer {
 public:
  HostServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 64);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~HostServer() { close(fd_); }
  int Accepted() {
    int n = 0;
    for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0; ++n) close(c);
    return n;
  }
  int port_ = 0;
  int fd_ = -1;
};

json InvokeJson(Daemon& d, const std::string& fn, const json& event) {
  std::string body;
  auto r = Invoke(d, fn, event.dump(), &body);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << body;
  EXPECT_FALSE(j.contains("errorType")) << body;
  return j;
}

std::string BridgeOf(Daemon& d) {
  const std::string& log = d.ReadLog();
  auto at = log.find("function network: bridge ");
  if (at == std::string::npos) return "";
  at += strlen("function network: bridge ");
  return log.substr(at, log.find(',', at) - at);
}

// What of the daemon whose bridge this is remains: its interfaces, routes, tables.
std::vector<std::string> NetworkLeftovers(const std::string& bridge) {
  std::vector<std::string> left;
  const std::string id = bridge.substr(2, 6);
  for (const auto& e : fs::directory_iterator("/sys/class/net"))
    if (e.path().filename().string().rfind("fk" + id, 0) == 0) left.push_back("interface " + e.path().filename().string());
  auto routes = Ip({"-4", "route", "show", "table", "all"}).out;
  if (routes.find(bridge) != std::string::npos) left.push_back("route via " + bridge);
  auto tables = Run({"/usr/sbin/nft", "list", "tables"}, {}, 30).out;
  if (tables.find("forklet_" + id) != std::string::npos) left.push_back("nftables table forklet_" + id);
  return left;
}

// One invocation on a new instance (X-Forklet-Fresh-Instance: it ends after the response).
json InvokeFresh(Daemon& d, const std::string& fn, const json& event) {
  auto r = api::HttpCall(d.endpoint(), "POST", "/2015-03-31/functions/" + fn + "/invocations", event.dump(),
                         {{"X-Forklet-Fresh-Instance", "1"}});
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  if (!r.ok()) return json::object();
  EXPECT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r->body;
  return j.is_object() ? j : json::object();
}

// Which net namespace an instance ran in: its inode (reused by the kernel once a namespace is
// gone) and its eth0 address (given round-robin over the daemon's /22 to each new namespace).
std::string NetnsOf(const json& r) { return r.value("netns", "?") + " " + r.value("address", "?"); }

// Once an instance has ended, a namespace is checked before it is reused (none after ending).
void AwaitTeardown(Daemon& d) {
  for (int i = 0; i < 40; ++i) {
    auto h = Health(d);
    if (h["instances"]["retiring"] == 0 && h["instances"]["busy"] == 0) break;
    usleep(25000);
  }
  usleep(100000);
}

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    internet_ = std::make_unique<Internet>();
    ASSERT_EQ(internet_->error_, "");
  }
  std::unique_ptr<Internet> internet_;
};

TEST_F(NetworkTest, EgressReachesTheInternetAndNothingElse) {
  auto d = Daemon::Start();
  const std::string bridge = BridgeOf(*d);
  ASSERT_NE(bridge, "") << d->log();
  auto bridge_mac = [&] {
    std::string mac;
    std::ifstream("/sys/class/net/" + bridge + "/address") >> mac;
    return mac;
  };
  const std::string gateway_mac = bridge_mac();
  for (const char* fn : {"probe", "peer"})
    ASSERT_EQ(Deploy(*d, fn, "netprobe", {"--timeout", "30"}).exit_code, 0) << fn;
  auto peer = InvokeJson(*d, "peer", json::object());
  ASSERT_TRUE(peer["address"].is_string()) << peer.dump();
  const std::string peer_addr = peer["address"];
  EXPECT_EQ(peer["interfaces"], json({"lo", "eth0"}));
  // DNS through the host's resolver configuration.
  std::ifstream host_resolv("/etc/resolv.conf");
  std::string resolv((std::istreambuf_iterator<char>(host_resolv)), {});
  if (resolv.find("nameserver 127.") == std::string::npos) {
    EXPECT_EQ(peer["resolv_conf"], resolv);
  }

  // The peer listens (and proves it by reaching itself) while the probe tries everything.
  json listened;
  std::thread listener([&] {
    listened = InvokeJson(*d, "peer", json{{"listen", {9100, 6}}, {"connect", {{"self", {"$self", 9100}}}}});
  });
  sleep(2);
  HostServer host;
  const int api_port = std::stoi(d->endpoint().substr(d->endpoint().rfind(':') + 1));
  json connect = {
      {"internet_direct", {internet_->addr_, 8080}},
      {"gateway_api", {"$gateway", api_port}},
      {"gateway_server", {"$gateway", host.port_}},
      {"peer", {peer_addr, 9100}},
      {"metadata", {"169.254.169.254", 80}},
      {"link_local_server", {Internet::kLinkLocal, 8080}},
  };
  for (const auto& a : HostAddresses()) {
    connect["host_" + a] = {a, host.port_};
    connect["host_api_" + a] = {a, api_port};
  }
  auto r = InvokeJson(*d, "probe", json{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}},
                                        {"connect", connect},
                                        {"udp", {{"udp_own", {internet_->addr_, 9999}}}}});
  listener.join();
  EXPECT_EQ(r["udp_own"], "SENT");

  // Spoofed sources. An instance cannot send them (no CAP_NET_RAW or CAP_NET_ADMIN: the kernel
  // refuses a source that is not its own), so root sends them from the probe's namespace: they would
  // arrive (masqueraded), were they not dropped at its bridge port.
  const std::string probe_addr = r["address"];
  const std::string send =
      "import socket, sys\n"
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "s.setsockopt(socket.SOL_IP, 19, 1)\n"  // IP_TRANSPARENT: any source address
      "s.bind((sys.argv[1], 0))\n"
      "s.sendto(sys.argv[2].encode(), (sys.argv[3], 9999))\n";
  const std::string find_ns =
      "for p in /proc/[0-9]*; do n=$(readlink $p/ns/net) || continue; case \" $seen \" in *\" $n \"*) continue ;; esac;"
      " seen=\"$seen $n\"; /usr/bin/nsenter -t ${p#/proc/} -n /usr/sbin/ip -4 -o addr show dev eth0 2>/dev/null | grep -q \" $0/\" &&"
      " { echo ${p#/proc/}; exit 0; }; done; exit 1";
  auto found = forklet::testing::Run({"/bin/bash", "-c", find_ns, probe_addr}, {}, 60);
  ASSERT_EQ(found.exit_code, 0) << "no namespace with " << probe_addr;
  const std::string ns_pid = found.out.substr(0, found.out.find('\n'));
  for (const auto& [source, name] : std::vector<std::pair<std::string, std::string>>{
           {probe_addr, "root_own"}, {peer_addr, "root_spoofed_as_peer"}, {"203.0.113.9", "root_spoofed_from_outside"}}) {
    auto sent = forklet::testing::Run({"/usr/bin/nsenter", "-t", ns_pid, "-n", "/usr/bin/python3", "-c", send, source, name,
                     internet_->addr_}, {}, 30);
    EXPECT_EQ(sent.exit_code, 0) << name << ": " << sent.err;
  }
  usleep(500000);
  const std::string arrived = internet_->Datagrams();
  EXPECT_NE(arrived.find("udp_own from " + internet_->host_addr_), std::string::npos)
      << "masqueraded to the host's address: " << arrived;
  EXPECT_NE(arrived.find("root_own from " + internet_->host_addr_), std::string::npos) << arrived;
  EXPECT_EQ(arrived.find("spoofed"), std::string::npos) << arrived;

  EXPECT_EQ(r["internet"], internet_->token_) << r.dump();
  EXPECT_EQ(r["internet_direct"], "OK");
  for (auto& [name, v] : connect.items()) {
    if (name != "internet_direct") {
      EXPECT_NE(r[name], "OK") << name << " was reachable";
    }
  }
  EXPECT_EQ(host.Accepted(), 0) << "a server on the host's addresses was reached";
  EXPECT_EQ(listened["self"], "OK") << listened.dump();
  EXPECT_EQ(listened["address"], peer_addr) << "the listener ran in another instance";
  EXPECT_EQ(listened["accepted"], 1) << "only its own connection: " << listened.dump();
  // The gateway keeps its MAC while instances come and go (a bridge left to itself takes its lowest
  // port's, and instances that cached the old one could not get out until their ARP entry expired).
  EXPECT_EQ(bridge_mac(), gateway_mac);
  int assigned = 0;
  std::ifstream("/sys/class/net/" + bridge + "/addr_assign_type") >> assigned;
  EXPECT_EQ(assigned, 3) << "NET_ADDR_SET: the bridge's MAC was set, it does not follow its ports";
  // Instances' bridge ports add nothing to the host's IPv6 (no link-local address, routes, DAD).
  const std::string v6 = Ip({"-6", "-o", "addr", "show"}).out;
  EXPECT_EQ(v6.find("fk" + bridge.substr(2, 6) + "v"), std::string::npos) << v6;
}

TEST_F(NetworkTest, NoneReachesNothing) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "closed", "netprobe",
                   {"--timeout", "30", "--environment", "Variables={FORKLET_NETWORK=none}"}).exit_code, 0);
  auto r = InvokeJson(*d, "closed", json{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}},
                                         {"connect", {{"direct", {internet_->addr_, 8080}},
                                                      {"host", {internet_->host_addr_, 8080}}}}});
  EXPECT_EQ(r["interfaces"], json({"lo"}));
  EXPECT_TRUE(r["gateway"].is_null());
  EXPECT_NE(r["internet"], internet_->token_);
  EXPECT_EQ(r["direct"], "ENETUNREACH");
  EXPECT_EQ(r["host"], "ENETUNREACH");
  // A bad value is refused with Lambda's error shape.
  auto bad = d->Aws({"update-function-configuration", "--function-name", "closed", "--environment",
                     "Variables={FORKLET_NETWORK=vpc}"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("FORKLET_NETWORK must be egress or none"), std::string::npos) << bad.err;
}

TEST_F(NetworkTest, DaemonDefaultNoneAndAFunctionThatAsksForEgress) {
  auto d = Daemon::Start({"--function-network=none"});
  ASSERT_EQ(Deploy(*d, "closed", "netprobe", {"--timeout", "30"}).exit_code, 0);
  ASSERT_EQ(Deploy(*d, "open", "netprobe",
                   {"--timeout", "30", "--environment", "Variables={FORKLET_NETWORK=egress}"}).exit_code, 0);
  json event{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}}};
  auto closed = InvokeJson(*d, "closed", event);
  EXPECT_EQ(closed["interfaces"], json({"lo"}));
  EXPECT_NE(closed["internet"], internet_->token_);
  EXPECT_EQ(BridgeOf(*d), "") << "no bridge before a function asks for egress";
  auto open = InvokeJson(*d, "open", event);
  EXPECT_EQ(open["interfaces"], json({"lo", "eth0"}));
  EXPECT_EQ(open["internet"], internet_->token_) << open.dump() << " host: " << Internet::HostFetch(internet_->addr_);
}

// Node.js instances start from pre-booted stem cells, booted with the daemon's default network: a
// none function's stem cell loses its eth0 before it gets the code.
TEST_F(NetworkTest, NodeStemCellsFollowTheFunctionsNetwork) {
  auto d = Daemon::Start();
  const std::string dir = "/tmp/forklet-test-inet-" + std::to_string(getpid()) + "-node";
  fs::create_directories(dir);
  std::ofstream(dir + "/index.js")
      << "const os = require('os');\n"
         "exports.handler = async () => ({interfaces: Object.keys(os.networkInterfaces()).sort()});\n";
  const std::string zip = ZipDirectory(dir);
  fs::remove_all(dir);
  auto stem_cell_ready = [&] {
    for (int i = 0; i < 300; ++i) {
      auto h = json::parse(forklet::testing::Run({"/usr/bin/curl", "-s", d->endpoint() + "/forklet/v1/health"}).out, nullptr, false);
      if (h.is_object() && h.contains("stem_cells") && h["stem_cells"].contains("nodejs") &&
          h["stem_cells"]["nodejs"]["ready"] >= 1)
        return true;
      usleep(50000);
    }
    return false;
  };
  for (const auto& [fn, network, want] : std::vector<std::tuple<std::string, std::string, json>>{
           {"open", "egress", json({"eth0", "lo"})}, {"closed", "none", json({"lo"})}}) {
    auto r = d->Aws({"create-function", "--function-name", fn, "--runtime", "nodejs20.x", "--handler",
                     "index.handler", "--zip-file", "fileb://" + zip, "--role", "arn:aws:iam::000000000000:role/x",
                     "--environment", "Variables={FORKLET_NETWORK=" + network + "}"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(stem_cell_ready());
    std::string body, log;
    InvokeWithLog(*d, fn, "{}", &body, &log);
    EXPECT_EQ(StartKindIn(log), "zygote") << "from a stem cell: " << log;
    EXPECT_EQ(json::parse(body, nullptr, false)["interfaces"], want) << fn << ": " << body;
  }
  unlink(zip.c_str());
}

TEST_F(NetworkTest, LeavesNoInterfaceRouteOrTableBehind) {
  int forward_before = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_forward") >> forward_before;
  const std::string state = "/tmp/forklet-test-state-net-" + std::to_string(getpid());
  RememberStateDir(state);
  std::string bridge;
  {
    auto d = Daemon::Start({}, state);
    bridge = BridgeOf(*d);
    ASSERT_NE(bridge, "") << d->log();
    ASSERT_EQ(Deploy(*d, "fn", "netprobe", {"--timeout", "30"}).exit_code, 0);
    EXPECT_EQ(InvokeJson(*d, "fn", json{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}}})["internet"],
              internet_->token_);
    EXPECT_FALSE(NetworkLeftovers(bridge).empty()) << "the check sees the daemon's network";
  }
  EXPECT_EQ(NetworkLeftovers(bridge), std::vector<std::string>{}) << "after a stop";
  {
    auto d = Daemon::Start({}, state);
    EXPECT_EQ(BridgeOf(*d), bridge) << "one bridge name per state dir";
    EXPECT_EQ(InvokeJson(*d, "fn", json{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}}})["internet"],
              internet_->token_);
    d->Kill9();
    EXPECT_FALSE(NetworkLeftovers(bridge).empty()) << "kill -9 leaves the network to the next start";
  }
  {
    auto d = Daemon::Start({}, state);  // removes its predecessor's leftovers first
    EXPECT_EQ(InvokeJson(*d, "fn", json{{"fetch", {{"internet", internet_->Url(internet_->addr_)}}}})["internet"],
              internet_->token_);
  }
  EXPECT_EQ(NetworkLeftovers(bridge), std::vector<std::string>{}) << "after kill -9 and a restart";
  // IPv4 forwarding is back as it was, unless another forklet daemon's bridge still needs it.
  bool others = false;
  for (const auto& e : fs::directory_iterator("/sys/class/net")) {
    auto name = e.path().filename().string();
    if (name.size() == 10 && name.rfind("fk", 0) == 0 && name.substr(8) == "br") others = true;
  }
  int forward_after = -1;
  std::ifstream("/proc/sys/net/ipv4/ip_forward") >> forward_after;
  if (!others) {
    EXPECT_EQ(forward_after, forward_before);
  }
  std::error_code ec;
  fs::remove_all(state, ec);
}

}  // namespace
}  // namespace forklet::testing

namespace forklet::testing {
namespace {

// A churn of new instances of one function reuses the namespaces of those that ended, and each
// finds no socket or connection of a predecessor, though every one left a listening TCP socket and
// a bound UDP socket, every other one also an open connection out (its end leaves TIME_WAIT, which
// is removed before the namespace is reused), and each reaches the internet from its reused namespace.
TEST_F(NetworkTest, NamespacesOfEndedInstancesAreReusedClean) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "leaver", "netleftover", {"--timeout", "30"}).exit_code, 0);
  std::map<std::string, int> seen;
  for (int i = 0; i < 12; ++i) {
    json event{{"listen", 9200}, {"udp", 9300}, {"fetch", {internet_->addr_, 8080, "/hello.txt"}}};
    if (i % 2 == 1) event["keep"] = {internet_->addr_, 8080};
    auto r = InvokeFresh(*d, "leaver", event);
    EXPECT_EQ(r["found"], json::array()) << "instance " << i << " found its predecessors' sockets";
    EXPECT_EQ(r["fetched"], internet_->token_) << "instance " << i << ": " << r.dump();
    EXPECT_GE(r["own"].size(), i % 2 == 1 ? 3u : 2u) << "its own sockets are seen: " << r.dump();
    ++seen[NetnsOf(r)];
    AwaitTeardown(*d);
  }
  size_t repeated = 0;
  for (const auto& [ns, n] : seen) repeated += n - 1;
  EXPECT_GE(repeated, 3u) << "namespaces were not reused";
  auto netns = Health(*d)["netns"];
  EXPECT_GE(netns["reused"].get<int>(), 3) << netns;
  EXPECT_GE(netns["time_wait_removed"].get<int>(), 1) << "the connections kept open were not seen: " << netns;
}

// A namespace serves one deployment of one function: never another function, nor the same name
// deleted and created again, nor the function after a change of its configuration.
TEST_F(NetworkTest, ANamespaceNeverGoesToAnotherFunction) {
  auto d = Daemon::Start();
  for (const char* fn : {"a", "b"}) ASSERT_EQ(Deploy(*d, fn, "netleftover", {"--timeout", "30"}).exit_code, 0);
  std::map<std::string, std::set<std::string>> of;  // namespaces by deployment
  std::map<std::string, size_t> lives;
  auto churn = [&](const std::string& fn, const std::string& deployment) {
    auto r = InvokeFresh(*d, fn, json{{"listen", 9200}});
    EXPECT_EQ(r["found"], json::array()) << deployment << " found another instance's sockets";
    of[deployment].insert(NetnsOf(r));
    ++lives[deployment];
    AwaitTeardown(*d);
  };
  for (int i = 0; i < 5; ++i) {
    churn("a", "a");
    churn("b", "b");
  }
  ASSERT_EQ(d->Aws({"delete-function", "--function-name", "b"}).exit_code, 0);
  ASSERT_EQ(Deploy(*d, "b", "netleftover", {"--timeout", "30"}).exit_code, 0);
  ASSERT_EQ(d->Aws({"update-function-configuration", "--function-name", "a", "--environment",
                    "Variables={CHANGED=1}"}).exit_code, 0);
  for (int i = 0; i < 4; ++i) {
    churn("b", "b re-created");
    churn("a", "a changed");
  }
  for (const auto& [dep, namespaces] : of) {
    EXPECT_LT(namespaces.size(), lives[dep]) << dep << " reused none of its namespaces";
    for (const auto& [other, theirs] : of) {
      if (other == dep) continue;
      for (const auto& ns : namespaces) EXPECT_EQ(theirs.count(ns), 0u) << dep << " and " << other << " shared " << ns;
    }
  }
  EXPECT_GE(Health(*d)["netns"]["reused"].get<int>(), 4) << Health(*d)["netns"];
}

}  // namespace
}  // namespace forklet::testing
