// Reading a daemon's footprint from /proc, its cgroups from the cgroup file systems.
#include "tests/soak/daemon_footprint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace fs = std::filesystem;
namespace {

// "State:" and the like from /proc/PID/status; empty when the process is gone.
std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

int CountEntries(const std::string& dir) {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// Every forklet.<tag> directory in the cgroup file systems (one per v1 hierarchy).
std::vector<fs::path> TagRoots(const std::string& tag) {
  std::vector<fs::path> roots;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    if (it->path().filename() == "forklet." + tag) {
      roots.push_back(it->path());
      it.disable_recursion_pending();
    } else if (it.depth() > 5 || it->path().filename().string().rfind("forklet.", 0) == 0) {
      it.disable_recursion_pending();  // someone else's forklet, or too deep to be ours
    }
  }
  return roots;
}

std::vector<pid_t> ReadPids(const fs::path& procs) {
  std::vector<pid_t> pids;
  std::ifstream f(procs);
  pid_t p;
  while (f >> p) pids.push_back(p);
  return pids;
}

void CgroupsOf(const std::string& tag, std::vector<std::string>* dirs, std::vector<pid_t>* pids) {
  std::error_code ec;
  for (const auto& root : TagRoots(tag)) {
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_directory(ec)) continue;
      dirs->push_back(it->path().string());
      for (pid_t p : ReadPids(it->path() / "cgroup.procs")) pids->push_back(p);
    }
  }
  std::sort(pids->begin(), pids->end());
  pids->erase(std::unique(pids->begin(), pids->end()), pids->end());
}

}  // namespace

std::string CgroupTag(const Daemon& d) {
  std::smatch m;
  static const std::regex tag(R"(forklet\.(\d+))");
  return std::regex_search(d.log(), m, tag) ? m[1].str() : "";
}

bool Running(pid_t pid) {
  std::string state = StatusField(pid, "State");
  return !state.empty() && state.find('Z') == std::string::npos;
}

DaemonFootprint Footprint(pid_t daemon_pid, const std::string& tag, const std::string& state_dir) {
  DaemonFootprint f;
  CgroupsOf(tag, &f.cgroups, &f.cgroup_pids);
  if (daemon_pid <= 0) return f;
  std::string proc = "/proc/" + std::to_string(daemon_pid);
  f.fds = CountEntries(proc + "/fd");
  f.threads = CountEntries(proc + "/task");
  std::istringstream(StatusField(daemon_pid, "VmRSS")) >> f.rss_kb;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    std::istringstream ppid(StatusField(pid, "PPid"));
    pid_t parent = 0;
    if (ppid >> parent && parent == daemon_pid && StatusField(pid, "State").find('Z') != std::string::npos)
      f.zombie_children.push_back(pid);
  }
  std::ifstream mounts("/proc/" + std::to_string(daemon_pid) + "/mountinfo");
  std::string line;
  while (std::getline(mounts, line))
    if (line.find(" " + state_dir) != std::string::npos) ++f.state_dir_mounts;
  return f;
}

std::vector<pid_t> ProcessesOfUid(const std::string& tag, uid_t uid) {
  std::vector<pid_t> out, pids;
  std::vector<std::string> dirs;
  CgroupsOf(tag, &dirs, &pids);
  for (pid_t pid : pids) {
    std::istringstream uids(StatusField(pid, "Uid"));
    uid_t real = 0;
    if (uids >> real && real == uid) out.push_back(pid);
  }
  return out;
}

}  // namespace forklet::testing
