// Reads /proc/thread-self/net/{sockstat,sockstat6,dev,route}: four small reads, no socket of its
// own (one would count in the very sockstat it reads).
#include "sandbox/net/netns_state.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace forklet::sandbox::net {
namespace {

// The lines of text, without their newline.
template <typename F>
void EachLine(std::string_view text, F&& f) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    f(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The number after `name` in "inuse 3 orphan 0 tw 1 ...", or 0.
uint64_t Field(std::string_view fields, std::string_view name) {
  size_t pos = 0;
  while (pos < fields.size()) {
    size_t end = fields.find(' ', pos);
    if (end == std::string_view::npos) end = fields.size();
    std::string_view word = fields.substr(pos, end - pos);
    pos = end + 1;
    if (word != name) continue;
    size_t vend = fields.find(' ', pos);
    std::string value(fields.substr(pos, vend == std::string_view::npos ? std::string_view::npos : vend - pos));
    return std::strtoull(value.c_str(), nullptr, 10);
  }
  return 0;
}

Result<std::string> ReadAll(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return SysError(std::string("read ") + path);
  return text.str();
}

}  // namespace

bool ParseSockstat(std::string_view text, NetnsState* state) {
  bool any = false;
  EachLine(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view key = line.substr(0, colon), fields = Trim(line.substr(colon + 1));
    any = true;
    if (key == "sockets")
      state->sockets += Field(fields, "used");
    else if (key == "FRAG" || key == "FRAG6")
      state->fragments += Field(fields, "inuse");
    else if (key == "TCP" || key == "TCP6" || key == "UDP" || key == "UDP6" || key == "UDPLITE" ||
             key == "UDPLITE6" || key == "RAW" || key == "RAW6")
      state->inet += Field(fields, "inuse");
    if (key == "TCP") state->time_wait += Field(fields, "tw");  // IPv6's are counted with IPv4's
  });
  return any;
}

std::vector<std::string> ParseInterfaces(std::string_view proc_net_dev) {
  std::vector<std::string> names;
  EachLine(proc_net_dev, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;  // the two header lines have none
    std::string_view name = Trim(line.substr(0, colon));
    if (!name.empty()) names.emplace_back(name);
  });
  std::sort(names.begin(), names.end());
  return names;
}

size_t CountRoutes(std::string_view proc_net_route) {
  size_t lines = 0;
  bool header = true;
  EachLine(proc_net_route, [&](std::string_view line) {
    if (header) {
      header = false;
      return;
    }
    if (!Trim(line).empty()) ++lines;
  });
  return lines;
}

Result<NetnsState> ReadNetnsState() {
  NetnsState state;
  for (const char* path : {"/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"}) {
    auto text = ReadAll(path);
    if (!text) return text.error();
    if (!ParseSockstat(*text, &state)) return MakeError(path, "not a sockstat");
  }
  auto dev = ReadAll("/proc/thread-self/net/dev");
  if (!dev) return dev.error();
  state.interfaces = ParseInterfaces(*dev);
  auto route = ReadAll("/proc/thread-self/net/route");
  if (!route) return route.error();
  state.ipv4_routes = CountRoutes(*route);
  return state;
}

}  // namespace forklet::sandbox::net
