// Instance cgroups on cgroup v2: one directory below "<own cgroup>/forklet.<tag>", whose
// cgroup.subtree_control (ours) enables memory, pids and cpu for the instances. libcgroup removes
// them; creating stays by hand: libcgroup 2.0.2 would enable each controller in the
// cgroup.subtree_control of every ancestor up to the mount root (cgroups forklet does not own).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_fs.h"
#include "sandbox/cgroup_internal.h"
#include "sandbox/cgroup_lib.h"

namespace forklet::sandbox {
namespace {

constexpr const char* kWanted[] = {"memory", "pids", "cpu"};
constexpr uint64_t kCpuPeriodUs = 100000;

// cpu.shares (2..262144) to cpu.weight (1..10000), as systemd converts them.
uint64_t SharesToWeight(uint32_t shares) {
  const uint64_t s = std::clamp<uint32_t>(shares, 2, 262144);
  return 1 + ((s - 2) * 9999) / 262142;
}

// What the tree learned once and every cgroup below it shares.
struct V2Facts {
  std::string missing;         // wanted controllers not available below the root, e.g. "memory cpu"
  std::string own_dir;         // the delegating cgroup, named in the error
  bool has_kill_file = false;  // cgroup.kill (Linux 5.14+)
  bool has_freeze_file = false;  // cgroup.freeze (Linux 5.2+)
  cglib::Reach reach;            // the root through libcgroup; off when its table lacks the mount

  cgroupfs::Remover Remover() const {
    if (!reach.on()) return nullptr;
    return [this](const std::string& dir, size_t i) { return reach.RemoveBelow(dir, i); };
  }

  Error Unavailable(const std::string& op) const {
    return Error{op, EOPNOTSUPP,
                 "cgroup v2 controller(s) " + missing + " not enabled for forklet's cgroups; " +
                     "the delegating cgroup must list them in " + own_dir +
                     "/cgroup.subtree_control"};
  }
  bool MemoryMissing() const { return missing.find("memory") != std::string::npos; }
};

class CgroupV2 final : public Cgroup {
 public:
  CgroupV2(std::string name, std::string dir, std::shared_ptr<const V2Facts> facts)
      : name_(std::move(name)),
        dirs_{std::move(dir)},
        facts_(std::move(facts)),
        // File paths are built once: SetLimits and ReadStats run on the invocation path.
        memory_max_(dirs_[0] + "/memory.max"),
        swap_max_(dirs_[0] + "/memory.swap.max"),
        pids_max_(dirs_[0] + "/pids.max"),
        cpu_weight_(dirs_[0] + "/cpu.weight"),
        cpu_max_(dirs_[0] + "/cpu.max"),
        memory_current_(dirs_[0] + "/memory.current"),
        memory_events_(dirs_[0] + "/memory.events"),
        cpu_stat_(dirs_[0] + "/cpu.stat"),
        procs_(dirs_[0] + "/cgroup.procs") {}

  ~CgroupV2() override {
    if (!destroyed_) (void)Destroy();
    ClosePeak();
  }

  const std::string& name() const override { return name_; }
  const std::vector<std::string>& paths() const override { return dirs_; }

  Status SetLimits(const CgroupLimits& limits) override {
    if (!facts_->missing.empty()) return facts_->Unavailable("set limits on " + dirs_[0]);
    // Socket buffers are charged to memory.current on v2 (memory.stat "sock"), so memory.max
    // bounds them with everything else: no separate limit exists or is needed (v1 needs one).
    if (auto s = cgroupfs::Write(memory_max_, cgroupfs::Decimal(limits.memory_bytes).view()); !s)
      return s;
    // "Swap included": v2 limits swap separately, so no swap at all keeps the total at the limit.
    // Absent without swap accounting, where the memory limit alone applies.
    if (int err = cgroupfs::WriteControl(swap_max_, "0"); err != 0 && err != ENOENT)
      return SysError("write 0 to " + swap_max_, err);
    if (auto s = cgroupfs::Write(pids_max_, cgroupfs::Decimal(limits.pids_max).view()); !s)
      return s;
    return cgroupfs::Write(cpu_weight_,
                           cgroupfs::Decimal(SharesToWeight(limits.cpu_weight)).view());
  }

  Status LimitCpu(uint32_t permille) override {
    if (!facts_->missing.empty()) return facts_->Unavailable("limit the CPU of " + dirs_[0]);
    if (permille == 0) return cgroupfs::Write(cpu_max_, "max");
    const uint64_t quota = std::max<uint64_t>(1000, kCpuPeriodUs * permille / 1000);
    return cgroupfs::Write(cpu_max_, std::string(cgroupfs::Decimal(quota).view()) + " " +
                                         std::string(cgroupfs::Decimal(kCpuPeriodUs).view()));
  }

  // cgroup.freeze is a core file (no controller needed, Linux 5.2+). Writing 1 starts freezing;
  // cgroup.events says "frozen 1" once every task has stopped, which nothing here waits for.
  Status Freeze() override {
    if (!facts_->has_freeze_file) return {};
    if (auto s = freeze_file_.Write("1"); !s) return s;
    frozen_ = true;
    return {};
  }

  Status Thaw() override {
    if (!facts_->has_freeze_file || !frozen_) return {};
    if (auto s = freeze_file_.Write("0"); !s) return s;
    frozen_ = false;
    return {};
  }

  Result<std::vector<int>> OpenProcsFds() override {
    int fd = open(procs_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return SysError("open " + procs_);
    return std::vector<int>{fd};
  }

  Result<CgroupStats> ReadStats() override {
    if (facts_->MemoryMissing()) return facts_->Unavailable("read stats of " + dirs_[0]);
    CgroupStats st;
    auto current = cgroupfs::ReadNumber(memory_current_);
    if (!current) return current.error();
    auto usage_us = cgroupfs::ReadKeyed(cpu_stat_, "usage_usec");
    if (!usage_us) return usage_us.error();
    auto ooms = cgroupfs::ReadKeyed(memory_events_, "oom_kill");
    if (!ooms) return ooms.error();
    st.memory_current_bytes = *current;
    st.memory_peak_bytes = std::max(ReadPeak(), *current);
    st.cpu_usage_ns = *usage_us * 1000;
    st.oom_kills = *ooms;
    return st;
  }

  // Since Linux 6.12 a write to memory.peak resets the peak seen through that same open file, so
  // the file stays open and is both written and read through one fd. Older kernels cannot reset:
  // then this does nothing and the peak counts from creation.
  Status ResetPeak() override {
    if (facts_->MemoryMissing()) return {};
    OpenPeak();
    if (peak_fd_ < 0 || !peak_writable_) return {};
    if (pwrite(peak_fd_, "reset\n", 6, 0) < 0) peak_writable_ = false;
    return {};
  }

  Result<CgroupStats> TakeUsage() override {
    CgroupStats st;
    if (!facts_->MemoryMissing()) st.memory_peak_bytes = ReadPeak();
    auto usage_us = cpu_file_.ReadKeyed("usage_usec");
    if (!usage_us) return usage_us.error();
    st.cpu_usage_ns = *usage_us * 1000;
    return st;
  }

  Result<std::vector<int>> Pids() override { return cgroupfs::ReadPids(procs_); }

  Status Destroy() override {
    if (destroyed_) return {};
    ClosePeak();
    cpu_file_.Close();
    // v2 delivers SIGKILL to frozen tasks; thawing first keeps v1's order and costs nothing.
    if (auto s = Thaw(); !s) return s;
    freeze_file_.Close();
    if (auto s = cgroupfs::KillAndRemove(dirs_, facts_->has_kill_file, facts_->Remover()); !s)
      return s;
    destroyed_ = true;
    return {};
  }

 private:
  void OpenPeak() {
    if (peak_fd_ >= 0 || peak_absent_) return;
    const std::string path = dirs_[0] + "/memory.peak";
    peak_fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (peak_fd_ < 0) {  // read-only before 6.12
      peak_writable_ = false;
      peak_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (peak_fd_ < 0) peak_absent_ = true;  // before 5.19: only memory.current is known
  }

  uint64_t ReadPeak() {
    OpenPeak();
    if (peak_fd_ < 0) return 0;
    char buf[32];
    ssize_t n = pread(peak_fd_, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 0;
    uint64_t v = 0;
    std::from_chars(buf, buf + n, v);
    return v;
  }

  void ClosePeak() {
    if (peak_fd_ >= 0) close(peak_fd_);
    peak_fd_ = -1;
  }

  const std::string name_;
  const std::vector<std::string> dirs_;
  const std::shared_ptr<const V2Facts> facts_;  // shared: an instance may outlive the tree
  const std::string memory_max_, swap_max_, pids_max_, cpu_weight_, cpu_max_;
  const std::string memory_current_, memory_events_, cpu_stat_, procs_;
  // Kept open: read or written on every invocation.
  cgroupfs::ControlFile cpu_file_{cpu_stat_}, freeze_file_{dirs_[0] + "/cgroup.freeze"};
  bool frozen_ = false;
  int peak_fd_ = -1;
  bool peak_writable_ = true;
  bool peak_absent_ = false;
  bool destroyed_ = false;
};

class CgroupTreeV2 final : public CgroupTree {
 public:
  CgroupTreeV2(std::string root, std::string description, V2Facts facts)
      : root_(std::move(root)),
        description_(std::move(description)),
        facts_(std::make_shared<const V2Facts>(std::move(facts))) {}

  const char* version() const override { return "v2"; }
  bool can_freeze() const override { return facts_->has_freeze_file; }

  Status LimitSubtreePids(uint64_t max) override {
    if (facts_->missing.find("pids") != std::string::npos)
      return facts_->Unavailable("limit the pids of " + root_);
    return cgroupfs::Write(root_ + "/pids.max", cgroupfs::Decimal(max).view());
  }

  Status WeighSubtreeCpu(uint32_t shares) override {
    if (facts_->missing.find("cpu") != std::string::npos)
      return facts_->Unavailable("weigh the CPU of " + root_);
    const uint64_t weight = std::clamp<uint64_t>(uint64_t{shares} * 100 / 1024, 1, 10000);
    return cgroupfs::Write(root_ + "/cpu.weight", cgroupfs::Decimal(weight).view());
  }

  // Sockets are charged to each instance's memory (memory.max bounds them): nothing to limit.
  Status LimitSubtreeSocketMemory(uint64_t) override { return {}; }
  std::string root_description() const override { return description_; }

  Result<std::unique_ptr<Cgroup>> Create(const std::string& name) override {
    if (!IsValidCgroupName(name)) return Error{"create cgroup \"" + name + "\"", EINVAL, {}};
    std::string dir = root_ + "/" + name;
    if (auto s = cgroupfs::MakeDir(dir); !s) return s.error();
    return std::unique_ptr<Cgroup>(new CgroupV2(name, std::move(dir), facts_));
  }

  Result<int> RemoveStale() override {
    return cgroupfs::RemoveDescendants({root_}, facts_->has_kill_file, facts_->Remover());
  }

  Status RemoveRoot() override {
    if (facts_->reach.on()) {
      if (int err = facts_->reach.RemoveBelow(root_, 0); err != 0)
        return SysError("remove cgroup " + root_, err);
      return {};
    }
    if (rmdir(root_.c_str()) != 0 && errno != ENOENT) return SysError("rmdir " + root_);
    return {};
  }

 private:
  const std::string root_;
  const std::string description_;
  const std::shared_ptr<const V2Facts> facts_;
};

bool Listed(const std::string& list, std::string_view word) {
  size_t pos = 0;
  while ((pos = list.find(word, pos)) != std::string::npos) {
    bool starts = pos == 0 || list[pos - 1] == ' ';
    size_t end = pos + word.size();
    if (starts && (end == list.size() || list[end] == ' ' || list[end] == '\n')) return true;
    pos = end;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<CgroupTree>> OpenCgroupTreeV2(const CgroupHierarchy& unified,
                                                     const std::string& tag) {
  const std::string leaf = "forklet." + tag;
  const std::string root = unified.own_dir + "/" + leaf;
  // An existing root is a crashed predecessor's (same tag): adopt it, RemoveStale cleans it.
  if (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) return SysError("mkdir " + root);

  // Enable in our root what the delegating cgroup offers; what it does not offer is reported
  // by SetLimits (enabling it up there is not ours to do).
  auto available = cgroupfs::Read(root + "/cgroup.controllers");
  if (!available) return available.error();
  auto enabled = cgroupfs::Read(root + "/cgroup.subtree_control");
  if (!enabled) return enabled.error();
  std::string enable;
  V2Facts facts;
  for (const char* c : kWanted) {
    if (!Listed(*available, c))
      facts.missing += (facts.missing.empty() ? "" : " ") + std::string(c);
    else if (!Listed(*enabled, c))
      enable += (enable.empty() ? "+" : " +") + std::string(c);
  }
  if (!enable.empty())
    if (auto s = cgroupfs::Write(root + "/cgroup.subtree_control", enable); !s) return s.error();
  facts.own_dir = unified.own_dir;
  facts.has_kill_file = access((root + "/cgroup.kill").c_str(), F_OK) == 0;
  facts.has_freeze_file = access((root + "/cgroup.freeze").c_str(), F_OK) == 0;
  // libcgroup names a v2 cgroup through any controller of the mount (one rmdir is enough).
  facts.reach = cglib::ReachRoots({unified.own_dir}, leaf);
  if (facts.reach.on() && facts.reach.where[0].v2)
    facts.reach.where[0].controllers.resize(1);
  else
    facts.reach = cglib::Reach{};

  std::string description =
      "0::" + (unified.cgroup_path == "/" ? "" : unified.cgroup_path) + "/" + leaf;
  return std::unique_ptr<CgroupTree>(
      new CgroupTreeV2(root, std::move(description), std::move(facts)));
}

}  // namespace forklet::sandbox
