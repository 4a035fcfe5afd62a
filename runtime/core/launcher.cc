// New instances: zygote choice (the function's own, a spare bound to it, or a cold boot), Node's
// stem cells, sandbox spec, cgroup, fork, ready. Snapshots (checkpoint and restore) are in launcher_snapshots.cc.
#include "runtime/core/launcher.h"

#include "sandbox/code_image.h"
#include "sandbox/template_root.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/core/execution_env.h"
#include "runtime/core/launch_timing.h"
#include "runtime/log/log.h"
#include "runtime/registry/function_key.h"

namespace forklet::core {
namespace fs = std::filesystem;
namespace {

// NAME=off in the daemon's environment turns a start-up optimisation off (for A/B measurements).
bool SwitchedOff(const char* name) {
  const char* v = getenv(name);
  return v && strcmp(v, "off") == 0;
}

constexpr uint32_t kFirstSandboxUid = 100000;  // far above host accounts
constexpr uint32_t kSandboxUids = 50000;
constexpr uint32_t kSandboxGid = 100000;

void CopyString(char* dst, size_t cap, const std::string& src) {
  size_t n = std::min(cap - 1, src.size());
  memcpy(dst, src.data(), n);
  dst[n] = 0;
}

Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::trunc);
  f << content;
  if (!f) return SysError("write " + path);
  return {};
}

// A connected stream socketpair made inside the net namespace `net_fd` (setns is per thread:
// a short-lived thread does it, so the caller's namespace never changes).
bool SocketPairIn(int net_fd, int fds[2]) {
  bool ok = false;
  std::thread([&] {
    ok = setns(net_fd, CLONE_NEWNET) == 0 &&
         socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0;
  }).join();
  if (ok) fcntl(fds[0], F_SETFL, O_NONBLOCK);
  return ok;
}

}  // namespace

uint32_t CpuPermilleFor(uint64_t memory_mb) {
  return static_cast<uint32_t>(std::max<uint64_t>(1, 1000 * memory_mb / 1769));
}

uint32_t CpuQuotaPermilleFor(uint64_t memory_mb) {
  return std::max<uint32_t>(kMinCpuQuotaPermille, CpuPermilleFor(memory_mb));
}

std::string Generation(const registry::FunctionConfig& config) {
  return config.function_id + "|" + std::to_string(config.revision) + "|" + config.last_modified +
         "|" + config.code_sha256 + "|" + config.version;
}

Result<std::unique_ptr<Launcher>> Launcher::Create(const LauncherOptions& options) {
  std::unique_ptr<Launcher> l(new Launcher(options));
  auto seccomp = sandbox::CompileDefaultPolicy();
  if (!seccomp) return seccomp.error();
  l->seccomp_ = std::move(seccomp.value());
  if (auto s = l->PrepareSandboxFiles(); !s) return s.error();
  auto tree = sandbox::OpenCgroupTree(options.cgroup_tag);
  if (!tree) return tree.error();
  l->tree_ = std::move(tree.value());
  // Which forklet.<tag> cgroups are this daemon's, for tools/cleanup.sh on a host where other
  // daemons run (it removes every other forklet tree whose daemon is gone).
  std::ofstream(options.state_dir + "/cgroup-tag") << options.cgroup_tag << "\n";
  // What a crashed predecessor left behind goes first.
  if (auto removed = l->tree_->RemoveStale(); !removed)
    return removed.error();
  else if (*removed > 0)
    log::Notice("removed " + std::to_string(*removed) + " stale instance cgroups");
  l->LimitSubtree();
  l->pool_ = std::make_unique<sandbox::CgroupPool>(l->tree_.get(), options.cgroup_pool_size);
  // With egress the default, none functions are the exception: a small pool of plain namespaces.
  const bool egress_default = options.network == sandbox::net::NetworkMode::kEgress;
  const size_t plain = egress_default ? std::min<size_t>(options.netns_pool_size, 2) : options.netns_pool_size;
  if (plain > 0) l->netns_ = std::make_unique<NetnsPool>(plain);
  if (options.netns_reuse_per_function > 0)
    l->netns_cache_ = std::make_shared<NetnsCache>(options.netns_reuse_per_function, options.netns_reuse_max,
                                                   options.zygotes.linger);
  if (egress_default) {
    if (auto pool = l->EgressPool(); !pool) return pool.error();
  } else {
    // A predecessor's leftovers go even when no function of this run asks for egress.
    if (auto removed = sandbox::net::EgressNetwork::RemoveStale(l->EgressOptions()); removed && *removed > 0)
      log::Notice("removed " + std::to_string(*removed) + " stale network interfaces and tables");
  }
  std::string no_images;
  const bool images = sandbox::CodeImagesSupported(&no_images);
  if (!images)
    log::Warning("code images off: " + no_images +
                 "; an instance's /var/task is a bind mount of the unpacked code, so its "
                 "/proc/self/mountinfo shows the state dir's path");
  l->code_mounts_ = std::make_unique<CodeMounts>(images);
  // Instances' /tmp: disk-backed areas below the state dir (a killed predecessor's go first).
  const std::string areas = options.state_dir + "/tmp-areas";
  mkdir(areas.c_str(), 0700);
  if (int removed = sandbox::RemoveTmpAreaLeftovers(areas); removed > 0)
    log::Notice("removed " + std::to_string(removed) + " stale /tmp areas");
  std::string no_areas = "--tmp-pool 0";
  if (options.tmp_pool_size > 0 && sandbox::TmpAreasSupported(areas, &no_areas)) {
    l->tmp_areas_ = std::make_shared<TmpAreaPool>(areas, options.tmp_pool_size);
    l->tmp_areas_->Want(512);  // Lambda's default size: most functions'
  } else {
    log::Warning("instances' /tmp is a tmpfs whose pages count against the function's memory (" +
                 no_areas + ")");
  }
  auto zcg = l->tree_->Create("zygotes");
  if (!zcg) return zcg.error();
  l->zygote_cgroup_ = std::move(zcg.value());
  auto fds = l->zygote_cgroup_->OpenProcsFds();
  if (!fds) return fds.error();
  l->zygote_procs_fds_ = std::move(fds.value());
  if (options.cgroup_warmer) l->warmer_ = std::thread([raw = l.get()] { raw->WarmerLoop(); });
  l->BuildTemplateNamespace();
  if (auto s = l->PrepareSnapshots(); !s) return s.error();
  l->bank_ = std::make_unique<ZygoteBank>(options.zygotes,
                                          [raw = l.get()](const std::string& family) { return raw->SpawnZygote(family); });
  l->preforks_ = std::make_unique<PreforkPool>(
      options.preforked, options.prefork_mb, options.zygotes.linger,
      [raw = l.get()](const registry::Deployed& fn) { return raw->MakePreforked(fn); });
  l->supervisor_ = std::make_unique<ZygoteSupervisor>([raw = l.get()] { return raw->RebootDeadZygotes(); },
                                                      std::chrono::milliseconds(200));
  return l;
}

Launcher::~Launcher() {
  supervisor_.reset();  // before the zygotes go: it must not reboot them
  preforks_.reset();    // their filler forks from the zygotes; their cgroups are the tree's
  bank_.reset();        // its zygotes' deleters use warm_pids_
  {
    std::lock_guard lock(stem_mu_);  // their fillers use the zygotes; their cgroups are the tree's
    stem_cells_.clear();
  }
  {
    std::lock_guard lock(snap_mu_);
    stopping_ = true;
  }
  snap_cv_.notify_all();
  if (snapshotter_.joinable()) snapshotter_.join();
  if (warmer_.joinable()) warmer_.join();
  {
    std::lock_guard lock(zygotes_mu_);
    zygotes_.clear();
  }
  for (int fd : zygote_procs_fds_) close(fd);
  if (template_ns_fd_ >= 0) close(template_ns_fd_);
  if (zygote_cgroup_) (void)zygote_cgroup_->Destroy();
  netns_cache_.reset();  // instances that end later close theirs (their leases' cache is gone)
  netns_.reset();
  {
    std::lock_guard lock(egress_mu_);
    egress_netns_.reset();  // before the bridge: its namespaces' veths go with them
    egress_.reset();        // tables, bridge, veths; ip_forward back off if forklet turned it on
  }
  pool_.reset();
  if (tree_) (void)tree_->RemoveRoot();
}

namespace {

// The first number of a /proc/sys file; 0 when unreadable.
uint64_t ReadSysctl(const char* path) {
  std::ifstream in(path);
  uint64_t n = 0;
  in >> n;
  return n;
}

// net.ipv4.tcp_mem's middle value: where the host's TCP memory enters pressure (pages).
uint64_t TcpPressurePages() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_mem");
  uint64_t low = 0, pressure = 0;
  in >> low >> pressure;
  return pressure;
}

}  // namespace

void Launcher::LimitSubtree() {
  const uint64_t pid_max = ReadSysctl("/proc/sys/kernel/pid_max");
  subtree_pids_ = options_.subtree_pids_max
                      ? options_.subtree_pids_max
                      : sandbox::SubtreePidsMax(pid_max ? pid_max : 32768, options_.memory_budget_mb,
                                                options_.pids_max);
  if (auto s = tree_->LimitSubtreePids(subtree_pids_); !s)
    log::Warning("forklet's cgroups have no pids limit together: " + s.error().ToString());
  if (auto s = tree_->WeighSubtreeCpu(options_.instances_cpu_weight); !s)
    log::Warning("instances weigh as one daemon thread for CPU: " + s.error().ToString());
  if (const uint64_t pages = TcpPressurePages()) {
    subtree_socket_bytes_ = sandbox::SubtreeSocketBytes(pages, sysconf(_SC_PAGESIZE));
    if (auto s = tree_->LimitSubtreeSocketMemory(subtree_socket_bytes_); !s)
      log::Warning("instances' socket buffers have no limit together: " + s.error().ToString());
  }
  if (!tree_->can_freeze())
    log::Warning("no cgroup freezer: idle instances are not frozen between invocations");
  // Open files are charged to each instance's memory, but the host also counts them against
  // fs.file-max, whose refusal (ENFILE) hits every unprivileged process of the host.
  const uint64_t file_max = ReadSysctl("/proc/sys/fs/file-max");
  const uint64_t files = subtree_pids_ * 1024;  // each task may hold RLIMIT_NOFILE (1024)
  if (file_max > 0 && files > file_max / 2)
    log::Warning("fs.file-max is " + std::to_string(file_max) + ": instances together may open " +
                 std::to_string(files) + " files and leave the host's other services none; " +
                 "raise it (systemd sets 9223372036854775807), memory cgroups bound the files");
  log::Notice("instances together: at most " + std::to_string(subtree_pids_) + " tasks (pid_max " +
              std::to_string(pid_max) + ")" +
              (std::string(tree_->version()) == "v1"
                   ? ", " + std::to_string(subtree_socket_bytes_ >> 20) + " MB of socket buffers"
                   : std::string()));
}

void Launcher::PrepareCode(const registry::Deployed& fn) {
  code_mounts_->Prepare(fn);
  if (tmp_areas_) tmp_areas_->Want(fn.config.ephemeral_storage_mb);
}

TmpLease Launcher::TakeTmpArea(const registry::FunctionConfig& fn, Stages* stages) {
  if (!tmp_areas_) return {};
  auto t0 = Clock::now();
  bool made_now = false;
  auto area = tmp_areas_->Take(fn.ephemeral_storage_mb, &made_now);
  if (!area) {
    // Rare (the disk is full, no loop device is free): the start goes on with a tmpfs, said once
    // in a while rather than per start.
    if (tmp_fallbacks_++ % 100 == 0)
      log::Warning("a /tmp area for " + fn.name + " could not be made (" + area.error().ToString() +
                   "): its /tmp is a tmpfs counting against its memory (" +
                   std::to_string(tmp_fallbacks_.load()) + " such starts so far)");
    return {};
  }
  if (made_now)
    stages->emplace_back("tmp_area_made", MsSince(t0));  // none was ready: made on this start
  else
    stages->emplace_back("tmp_area", MsSince(t0));
  return TmpLease(*area, tmp_areas_);
}

void Launcher::WarmerLoop() {
  while (!stopping_) {
    {
      std::lock_guard lock(warm_mu_);
      if (!warm_pids_.empty() && !zygote_procs_fds_.empty()) {
        auto text = std::to_string(*warm_pids_.rbegin());  // the newest
        (void)!write(zygote_procs_fds_[0], text.data(), text.size());  // no-op: already there
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
  }
}

namespace {

// The host's resolver configuration for egress instances (a none instance has no route to use it).
// A loopback nameserver (systemd-resolved's stub, a local dnsmasq) is out of an instance's reach:
// then systemd-resolved's list of upstream servers, as Docker does; else nothing.
std::string ResolverConfig() {
  auto loopback_only = [](const std::string& text) {
    std::istringstream in(text);
    bool any = false;
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string key, addr;
      if (!(words >> key >> addr) || key != "nameserver") continue;
      if (addr.rfind("127.", 0) != 0 && addr != "::1") return false;
      any = true;
    }
    return any;
  };
  for (const char* path : {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    if (in && !loopback_only(text.str())) return text.str();
  }
  return "";
}

}  // namespace

Status Launcher::PrepareSandboxFiles() {
  root_dir_ = options_.state_dir + "/sandbox/root";
  etc_dir_ = options_.state_dir + "/sandbox/etc";
  std::error_code ec;
  fs::create_directories(root_dir_, ec);
  fs::create_directories(etc_dir_, ec);
  if (ec) return SysError("create " + etc_dir_, ec.value());
  chmod((options_.state_dir + "/sandbox").c_str(), 0711);
  chmod(root_dir_.c_str(), 0755);
  chmod(etc_dir_.c_str(), 0755);
  // A minimal /etc: who the sandbox user is, loopback names, and the dynamic linker's cache.
  std::string passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n";
  std::string group = "root:x:0:\nsbx:x:" + std::to_string(kSandboxGid) + ":\n";
  passwd += "sbx_user:x:" + std::to_string(kFirstSandboxUid) + ":" + std::to_string(kSandboxGid) +
            "::/tmp:/usr/sbin/nologin\n";
  if (auto s = WriteFile(etc_dir_ + "/passwd", passwd); !s) return s;
  if (auto s = WriteFile(etc_dir_ + "/group", group); !s) return s;
  if (auto s = WriteFile(etc_dir_ + "/hosts", "127.0.0.1 localhost\n::1 localhost\n"); !s) return s;
  if (auto s = WriteFile(etc_dir_ + "/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"); !s)
    return s;
  if (auto s = WriteFile(etc_dir_ + "/resolv.conf", ResolverConfig()); !s) return s;
  if (auto s = WriteFile(etc_dir_ + "/hostname", "forklet\n"); !s) return s;
  for (const char* f : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/mime.types"}) {
    fs::copy_file(f, etc_dir_ + "/" + fs::path(f).filename().string(),
                  fs::copy_options::overwrite_existing, ec);  // optional: skip what is absent
  }
  return {};
}

void Launcher::BuildTemplateNamespace() {
  // Building the template (a tmpfs, read-only binds of /usr and the rest, copies of /etc and the
  // runners, /dev, a pivot) took ~3 ms of every zygote's boot, a cold start's included; joining
  // a copy of a built one takes two syscalls. The builder is the smallest zygote, dropped at
  // once: its namespace lives on through the fd.
  auto builder = SpawnZygote("native");
  if (!builder) {
    log::Warning("the template root is built by each zygote: " + builder.error().ToString());
    return;
  }
  const std::string ns = "/proc/" + std::to_string((*builder)->pid()) + "/ns/mnt";
  template_ns_fd_ = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
  if (template_ns_fd_ < 0)
    log::Warning("the template root is built by each zygote: open " + ns + ": " + strerror(errno));
}

Result<ZygoteBank::Zygote> Launcher::SpawnZygote(const std::string& family) {
  auto cmd = ZygoteCommandFor(family, options_.runners);
  if (!cmd) return cmd.error();
  // Into the zygotes' cgroup while it boots; the attach's own wait overlaps the boot.
  // The warmer starts at once too, so the lock is still warm when the first instance attaches.
  pid_t attached = 0;
  auto attach = [this, &attached](pid_t pid) {
    auto text = std::to_string(pid);
    for (int fd : zygote_procs_fds_) (void)!write(fd, text.data(), text.size());
    std::lock_guard lock(warm_mu_);
    warm_pids_.insert(pid);
    attached = pid;
  };
  sandbox::TemplateSpec root{};
  CopyString(root.root, sizeof(root.root), root_dir_);
  CopyString(root.etc_dir, sizeof(root.etc_dir), etc_dir_);
  CopyString(root.runtime_dir, sizeof(root.runtime_dir), options_.runners.runners_dir);
  auto spawned = zygote::ZygoteProcess::Spawn(*cmd, root, seccomp_, attach, 10000, template_ns_fd_);
  if (spawned && !(*spawned)->join_error().empty() && !join_failure_logged_.exchange(true))
    log::Warning("a " + family + " zygote built its own template root (slower boot): " +
                 (*spawned)->join_error());
  if (!spawned) {
    // Spawn reaped the failed zygote microseconds ago; pids are not reused that fast.
    std::lock_guard lock(warm_mu_);
    warm_pids_.erase(attached);
    return spawned.error();
  }
  auto forget_then_reap = [this](zygote::ZygoteProcess* z) {
    {
      std::lock_guard lock(warm_mu_);
      warm_pids_.erase(z->pid());
    }
    delete z;
  };
  return ZygoteBank::Zygote(spawned.value().release(), forget_then_reap);
}

Result<ZygoteBank::Zygote> Launcher::ZygoteFor(const std::string& family, bool* booted,
                                               Stages* stages) {
  std::lock_guard lock(zygotes_mu_);
  auto& z = zygotes_[family];
  if (z && z->alive()) return z;
  z.reset();  // a dead one is reaped here (or with its last instance); the next start is cold
  auto t0 = Clock::now();
  auto spawned = SpawnZygote(family);
  if (!spawned) return spawned.error();
  z = std::move(spawned.value());
  *booted = true;
  stages->emplace_back("zygote_boot", MsSince(t0));
  return z;
}

Result<ZygoteBank::Zygote> Launcher::ForkSource(const std::string& family,
                                                const registry::FunctionConfig* fn, bool retry,
                                                bool* booted, Stages* stages, bool on_demand,
                                                bool* banked) {
  *banked = false;
  if (!fn || !BindsZygotes(family)) return ZygoteFor(family, booted, stages);
  // One zygote per version: $LATEST and a published version never share one.
  if (retry) bank_->Unbind(registry::VersionKey(*fn));
  static const bool cold_exec_off = SwitchedOff("FORKLET_COLD_EXEC");  // cold starts wait for the zygote
  const std::string cold_exec = on_demand && !cold_exec_off ? ColdExecFamily(family) : "";
  auto lease = bank_->For(family, registry::VersionKey(*fn), Generation(*fn), stages, cold_exec.empty());
  if (!lease) return lease.error();
  if (!lease->zygote) {
    // No zygote of fn is ready: its instance boots its interpreter in its sandbox (a cold start),
    // and fn's zygote boots in the bank once this start has ended, for its later instances. A
    // host where the fork server cannot run boots the zygote on this start's path instead.
    *booted = true;
    auto server = ZygoteFor(cold_exec, booted, stages);
    if (server) return server;
    log::Warning(cold_exec + ": " + server.error().ToString() + " (this start waits for the zygote's boot)");
    lease = bank_->For(family, registry::VersionKey(*fn), Generation(*fn), stages, true);
    if (!lease) return lease.error();
  }
  *banked = true;
  if (lease->booted) *booted = true;
  return std::move(lease->zygote);
}

Status Launcher::WarmUp() {
  // Python's cold-start fork server first (a C++ process, ~1 ms of boot): a cold start never waits
  // for it. A host where it cannot run still starts Python functions, by booting their zygotes.
  bool booted = false;
  Stages stages;
  if (auto z = ZygoteFor(ColdExecFamily("python3"), &booted, &stages); !z)
    log::Warning("python3 cold starts wait for a zygote's boot: " + z.error().ToString());
  return bank_->AwaitSpare("python3", std::chrono::seconds(10));
}

void Launcher::Prepare(const std::string& family) {
  if (BindsZygotes(family))
    bank_->Prepare(family);  // its filler boots the spares in the background
  else
    (void)StemCellsFor(family);
}

void Launcher::ForgetFunction(const std::string& function) {
  ForgetSnapshot(function);
  if (netns_cache_) netns_cache_->Forget(function);
  preforks_->Forget(function);
  bank_->Unbind(function);
}

bool Launcher::DropZygote(const std::string& family) {
  if (UsesStemCells(family)) {
    // What makes its starts fast are the pre-booted stem cells; its fork server stays (it boots
    // in about a millisecond and a cold start does not wait for one in real life).
    std::lock_guard lock(stem_mu_);
    auto it = stem_cells_.find(family);
    if (it == stem_cells_.end()) return false;
    it->second->Drop();
    return true;
  }
  preforks_->Drop(family);
  return bank_->Drop(family);
}

size_t Launcher::RebootDeadZygotes() {
  // Spares are replaced by the bank's filler; what a dead zygote forked ahead goes with it, so
  // that its function's next start binds a live one.
  size_t found = bank_->Sweep([this](const std::string& function) { preforks_->Forget(function); });
  std::vector<std::string> dead;
  {
    std::lock_guard lock(zygotes_mu_);
    for (auto& [family, z] : zygotes_)
      if (z && !z->alive()) dead.push_back(family);
  }
  size_t rebooted = 0;
  for (const auto& family : dead) {
    bool booted = false;
    Stages stages;
    auto z = ZygoteFor(family, &booted, &stages);  // reaps the dead one, boots its successor
    if (!z) {
      log::Warning("zygote " + family + " died and could not be rebooted: " + z.error().ToString());
    } else if (booted) {
      log::Notice("zygote " + family + " died; rebooted as pid " + std::to_string((*z)->pid()));
      ++rebooted;
    }
  }
  return found + rebooted;
}

std::vector<ZygoteInfo> Launcher::Zygotes() {
  std::lock_guard lock(zygotes_mu_);
  std::vector<ZygoteInfo> out;
  for (auto& [family, z] : zygotes_) {
    if (!z || !z->alive()) continue;
    out.push_back({family, "", 0, z->pid(), z->boot_us() / 1000.0, forks_[family]});
  }
  for (auto& b : bank_->List())
    out.push_back({b.family, b.function, b.instances, b.pid, b.boot_ms, b.forks, b.fault_ahead_pages});
  return out;
}

StemCellPool* Launcher::StemCellsFor(const std::string& family) {
  if (!UsesStemCells(family) || options_.node_stem_cells == 0) return nullptr;
  std::lock_guard lock(stem_mu_);
  auto& pool = stem_cells_[family];
  if (!pool) {
    pool = std::make_unique<StemCellPool>(family, options_.node_stem_cells, options_.stem_cell_mb,
                                          [this, family] { return MakeStemCell(family); });
    pool->SetAllowance(standby_allowance_mb_);
  }
  return pool.get();
}

std::map<std::string, StemCellCounts> Launcher::StemCells() {
  std::lock_guard lock(stem_mu_);
  std::map<std::string, StemCellCounts> out;
  for (auto& [family, pool] : stem_cells_) out[family] = pool->Counts();
  return out;
}

uint64_t Launcher::StandbyMemoryMb() {
  uint64_t mb = 0;
  for (auto& [family, counts] : StemCells()) mb += counts.reserved_mb;
  return mb + bank_->ReservedMb() + preforks_->Counts().reserved_mb;
}

PreforkCounts Launcher::Preforked() { return preforks_->Counts(); }

void Launcher::SetStandbyAllowance(uint64_t mb) {
  // Zygotes first: bound ones serve live functions; spares make their first starts fast.
  bank_->SetAllowance(mb);
  uint64_t zygotes = bank_->ReservedMb();
  mb = mb > zygotes ? mb - zygotes : 0;
  {
    std::lock_guard lock(stem_mu_);
    standby_allowance_mb_ = mb;
    // One pool today (nodejs); were there more, the first would get what it fits, the next the rest.
    for (auto& [family, pool] : stem_cells_) {
      pool->SetAllowance(mb);
      uint64_t used = pool->Counts().reserved_mb;
      mb = mb > used ? mb - used : 0;
    }
  }
  preforks_->SetAllowance(mb);  // last: what the pools above leave
}

sandbox::CgroupLimits Launcher::LimitsFor(uint64_t memory_mb) const {
  sandbox::CgroupLimits limits;
  limits.memory_bytes = memory_mb << 20;
  limits.pids_max = options_.pids_max;
  // CPU share proportional to memory, as Lambda: a full core's weight at 1769 MB.
  limits.cpu_weight = std::max<uint32_t>(2, CpuPermilleFor(memory_mb) * 1024 / 1000);
  return limits;
}

Result<Launcher::InstanceCgroup> Launcher::AcquireCgroup(const sandbox::CgroupLimits& limits,
                                                         Stages* stages) {
  auto t0 = Clock::now();
  auto cgroup = pool_->Acquire(limits);
  if (!cgroup) return cgroup.error();
  auto procs = cgroup.value()->OpenProcsFds();
  if (!procs) return procs.error();
  stages->emplace_back("cgroup", MsSince(t0));
  return InstanceCgroup{std::move(cgroup.value()), std::move(procs.value())};
}

Result<Launcher::Forked> Launcher::ForkInstance(const std::string& family,
                                                const registry::FunctionConfig* fn,
                                                const sandbox::CgroupLimits& limits, int code_fd,
                                                bool exec_runner, bool* booted, Stages* stages,
                                                int opt_fd, int tmp_fd, bool on_demand) {
  bool banked = false;
  auto z = ForkSource(family, fn, false, booted, stages, on_demand && !exec_runner, &banked);
  if (!z) return z.error();

  auto cgroup = AcquireCgroup(limits, stages);
  if (!cgroup) return cgroup.error();
  auto* procs = &cgroup->procs;


  sandbox::ChildSpec spec{};
  CopyString(spec.hostname, sizeof(spec.hostname), "forklet");
  // The tmpfs when there is no area: the function's size (a stem cell: the daemon's).
  spec.tmp_size_bytes = fn ? uint64_t{fn->ephemeral_storage_mb} << 20 : options_.tmp_size_bytes;
  spec.uid = kFirstSandboxUid + static_cast<uint32_t>(next_uid_++ % kSandboxUids);
  spec.gid = kSandboxGid;
  spec.nofile_limit = 1024;

  // A stem cell (no function yet) gets the daemon's default; a function that differs is handled
  // when it takes one (StartStemCell).
  auto t_net = Clock::now();
  bool made_now = false;
  const auto mode = fn ? NetworkOf(*fn, options_.network) : options_.network;
  // A function's instance takes the namespace of one of its ended instances when one is cached,
  // and gives its own back at its end. Not a stem cell (no function yet: its namespace may lose
  // its eth0 to the function that takes it), nor a snapshot's source (its channel lives in it).
  const bool reuse = netns_cache_ && fn && !exec_runner;
  Result<PooledNetns> netns = reuse ? netns_cache_->Take(registry::VersionKey(*fn), Generation(*fn)) : PooledNetns{};
  if (netns->fd >= 0 && netns->veth.empty() != (mode == sandbox::net::NetworkMode::kNone)) {
    close(netns->fd);  // made for another network mode (cannot happen: the mode is the deployment's)
    netns->fd = -1;
  }
  if (netns->fd < 0) netns = TakeNetns(mode, exec_runner, &made_now);
  if (!netns) {
    for (int fd : *procs) close(fd);
    return netns.error();
  }
  const int net_fd = netns->fd;
  if (made_now) stages->emplace_back("netns_made", MsSince(t_net));  // the egress pool ran dry
  // A checkpoint can only take a channel that lives in the instance's own net namespace.
  int channel[2] = {-1, -1}, log[2] = {-1, -1};
  bool made = exec_runner ? net_fd >= 0 && SocketPairIn(net_fd, channel)
                          : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) == 0;
  if (!made || pipe2(log, O_CLOEXEC) != 0) {
    int e = errno;
    for (int fd : *procs) close(fd);
    for (int fd : {channel[0], channel[1], net_fd})
      if (fd >= 0) close(fd);
    if (exec_runner && net_fd < 0) return MakeError("snapshot instance", "no net namespace to make its channel in");
    return SysError(made ? "pipe" : "socketpair", e);
  }
  fcntl(channel[0], F_SETFL, O_NONBLOCK);
  fcntl(log[0], F_SETFL, O_NONBLOCK);
  fcntl(log[0], F_SETPIPE_SZ, 1 << 20);  // room for a burst of output between drains
  auto forked = (*z)->Fork(spec, channel[1], log[1], code_fd, net_fd, *procs, exec_runner, opt_fd, tmp_fd);
  if (!forked && !(*z)->alive()) {
    // The zygote died under this request (killed, crashed): its successor forks it, cold.
    z = ForkSource(family, fn, true, booted, stages, on_demand && !exec_runner, &banked);
    if (z) forked = (*z)->Fork(spec, channel[1], log[1], code_fd, net_fd, *procs, exec_runner, opt_fd, tmp_fd);
  }
  for (int fd : *procs) close(fd);
  close(channel[1]);
  close(log[1]);
  if (!forked) {
    if (net_fd >= 0) close(net_fd);  // a child that failed may not be reaped yet: not reused
    close(channel[0]);
    close(log[0]);
    return forked.error();
  }
  if (banked) {
    bank_->CountFork(*z);
  } else {
    std::lock_guard lock(zygotes_mu_);
    ++forks_[fn && BindsZygotes(family) ? ColdExecFamily(family) : family];
  }
  stages->emplace_back("fork", forked->round_trip_us / 1000.0);
  Forked out;
  out.instance = std::make_unique<Instance>("", "", 0, forked->pid, channel[0], log[0],
                                            std::move(cgroup->cgroup));
  if (banked && !exec_runner) LearnFaultsFrom(out.instance.get(), *z, spec);
  out.instance->HoldOrigin(std::move(z.value()));
  out.uid = spec.uid;
  out.gid = spec.gid;
  out.veth = netns->veth;
  if (reuse && net_fd >= 0)
    out.instance->KeepNetns(NetnsLease(std::move(netns.value()), registry::VersionKey(*fn), Generation(*fn), netns_cache_));
  else if (net_fd >= 0)
    close(net_fd);
  return out;
}

// A function's zygote learns, from the first of its instances to answer, which pages its
// children touch, and from then on has every new instance populate them in one step
// (zygote/fault_ahead.h, the fault_ahead stage). The learning reads the instance's page map in
// the zygote (a few ms, the zygote busy meanwhile): on a thread of its own, never the request's.
void Launcher::LearnFaultsFrom(Instance* instance, const std::shared_ptr<zygote::ZygoteProcess>& z,
                               const sandbox::ChildSpec& spec) {
  static const bool off = SwitchedOff("FORKLET_FAULT_AHEAD");
  if (off || z->fault_ahead_pages() > 0) return;
  // The turn is taken when an instance has answered, not at its fork: instances that never
  // answer (init errors, preforked ones dropped) use none.
  instance->AfterFirstAnswer([weak = std::weak_ptr(z), uid = spec.uid, gid = spec.gid](pid_t pid) {
    auto zygote = weak.lock();
    if (!zygote || !zygote->TakeLearnTurn()) return;
    std::thread([zygote, pid, uid, gid] {
      auto learned = zygote->LearnFaults(pid, uid, gid);
      if (!learned) {
        log::Info("fault-ahead: " + learned.error().ToString());
        return;
      }
      char line[200];
      snprintf(line, sizeof(line),
               "fault-ahead: zygote %d learned from instance %d: %llu pages to copy, %llu to map, "
               "%u ranges, in %.1f ms",
               zygote->pid(), pid, static_cast<unsigned long long>(learned->write_pages),
               static_cast<unsigned long long>(learned->read_pages), learned->ranges,
               learned->learn_us / 1000.0);
      log::Info(line);
    }).detach();
  });
}

Result<NetnsPool*> Launcher::EgressPool() {
  std::lock_guard lock(egress_mu_);
  if (!egress_netns_) {
    auto net = sandbox::net::EgressNetwork::Create(EgressOptions());
    if (!net) {
      Error e = net.error();
      e.op = "function network (egress): " + e.op;
      return e;
    }
    egress_ = std::move(net.value());
    log::Notice("function network: bridge " + egress_->bridge() + ", " + egress_->subnet() + ", NAT out");
    // Twice the plain pool: an egress namespace takes a few ms to make (veth, rtnetlink round trips),
    // so bursts of starts need more of them ready.
    egress_netns_ = std::make_unique<NetnsPool>(options_.netns_pool_size * 2, egress_.get());
  }
  return egress_netns_.get();
}

sandbox::net::EgressOptions Launcher::EgressOptions() const {
  auto options = options_.egress;
  if (options.id.empty()) {  // six hex digits of the cgroup tag: one daemon per state dir
    char id[8];
    snprintf(id, sizeof(id), "%06lx", std::strtoul(options_.cgroup_tag.c_str(), nullptr, 10) & 0xffffff);
    options.id = id;
  }
  return options;
}

Result<PooledNetns> Launcher::TakeNetns(sandbox::net::NetworkMode mode, bool wait, bool* made_now) {
  if (mode == sandbox::net::NetworkMode::kNone) {
    PooledNetns ns = netns_ ? netns_->Take() : PooledNetns{};
    for (int i = 0; wait && netns_ && ns.fd < 0 && i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ns = netns_->Take();
    }
    return ns;
  }
  auto pool = EgressPool();
  if (!pool) return pool.error();
  if (auto ns = (*pool)->Take(); ns.fd >= 0) return ns;
  if (made_now) *made_now = true;
  return (*pool)->Make();  // the pool ran dry: a few ms now rather than an instance without network
}

Launcher::NetnsReport Launcher::Netns() {
  NetnsReport r;
  if (netns_) r.made += netns_->made();
  {
    std::lock_guard lock(egress_mu_);
    if (egress_netns_) r.made += egress_netns_->made();
  }
  if (netns_cache_) r.reuse = netns_cache_->counts();
  return r;
}

sandbox::net::NetworkMode NetworkOf(const registry::FunctionConfig& config, sandbox::net::NetworkMode fallback) {
  auto it = config.environment.find("FORKLET_NETWORK");
  if (it == config.environment.end()) return fallback;
  return sandbox::net::ParseNetworkMode(it->second).value_or(fallback);
}

Result<StemCell> Launcher::MakeStemCell(const std::string& family) {
  auto t0 = Clock::now();
  bool booted = false;
  Stages stages;
  // Its boot is background work: the CPU weight of a small function, not a running one's.
  auto forked = ForkInstance(family, nullptr, LimitsFor(options_.stem_cell_mb), -1, false, &booted, &stages);
  if (!forked) return forked.error();
  if (auto s = forked->instance->AwaitBoot(Clock::now() + std::chrono::seconds(10), &stages); !s)
    return s.error();
  StemCell cell;
  cell.instance = std::move(forked->instance);
  cell.uid = forked->uid;
  cell.gid = forked->gid;
  cell.veth = forked->veth;
  cell.boot_ms = MsSince(t0);
  return cell;
}

Status Launcher::StartStemCell(const registry::Deployed& fn, const StemCell& cell, Launched* out) {
  const auto& cfg = fn.config;
  Instance& instance = *cell.instance;
  auto t_cg = Clock::now();
  // Its boot's memory stays charged to its cgroup: a function with less memory than a stem cell
  // already uses is started cold (a fresh Node, charged from zero), never OOM-killed at once.
  auto limits = LimitsFor(cfg.memory_mb);
  auto stats = instance.cgroup()->ReadStats();
  if (!stats) return stats.error();
  if (stats->memory_current_bytes + (8ull << 20) > limits.memory_bytes)
    return MakeError("stem cell", "uses " + std::to_string(stats->memory_current_bytes >> 20) +
                                      " MB, too close to the function's " + std::to_string(cfg.memory_mb) + " MB");
  // It was booted with the daemon's default network: egress needs its eth0, none loses it.
  const bool egress = NetworkOf(cfg, options_.network) == sandbox::net::NetworkMode::kEgress;
  if (egress && cell.veth.empty()) return MakeError("stem cell", "has no network interface");
  if (!egress && !cell.veth.empty()) {
    std::lock_guard lock(egress_mu_);
    if (auto s = egress_->Detach(cell.veth); !s) return s.error();
  }
  if (auto s = instance.cgroup()->SetLimits(limits); !s) return s.error();
  out->stages.emplace_back("cgroup", MsSince(t_cg));

  auto t_tree = Clock::now();
  auto code = code_mounts_->ForInstance(fn);
  if (!code) return code.error();
  auto opt = code_mounts_->LayersForInstance(fn);
  if (!opt) {
    close(*code);
    return opt.error();
  }
  out->stages.emplace_back("code_tree", MsSince(t_tree));
  TmpLease tmp = TakeTmpArea(cfg, &out->stages);  // over the stem cell's boot tmpfs
  auto t_mount = Clock::now();
  bool booted = false;
  auto z = ZygoteFor(registry::RuntimeFamily(cfg.runtime), &booted, &out->stages);
  Result<uint64_t> mounted = z ? (*z)->MountCode(instance.pid(), cell.uid, cell.gid, *code, *opt, tmp.fd())
                               : Result<uint64_t>(z.error());
  close(*code);
  if (*opt >= 0) close(*opt);
  instance.KeepTmp(std::move(tmp));  // back to the pool when the instance ends, mounted or not
  if (!mounted) return mounted.error();
  out->stages.emplace_back("mount_code", MsSince(t_mount));
  instance.AssignTo(cfg.name, Generation(cfg), cfg.memory_mb);
  return StartInstance(cfg, &instance, out);
}

Status Launcher::StartInstance(const registry::FunctionConfig& cfg, Instance* instance, Launched* out) {
  auto init = instance->prepared() ? nlohmann::json() : InitMessage(cfg, cfg.version);  // sent ahead
  auto deadline = Clock::now() + std::chrono::seconds(10 + cfg.timeout_s);
  return instance->Start(init, deadline, &out->stages, &out->init_ms, &out->init_error);
}

Result<Launched> Launcher::Launch(const registry::Deployed& fn) {
  const auto& cfg = fn.config;
  const std::string family = registry::RuntimeFamily(cfg.runtime);
  auto t0 = Clock::now();
  const auto policy = SnapshotPolicyOf(cfg);
  // Snapshots restore the runners that answer kRestored: Python's (it reseeds `random`) and, only
  // when asked for (policy on), Node's: its copies share V8's Math.random and OpenSSL's generator
  // state, which no JavaScript can renew (docs/snapshots.md).
  // A function with layers is not snapshotted: a restore would need its /opt as well (not done).
  const bool snapshots = snapshots_ && criu_ready_ && !fn.opt && (family == "python3" ? policy != SnapshotPolicy::kOff
                                        : family == "nodejs" && policy == SnapshotPolicy::kOn);
  // A runtime that boots after the fork: a pre-booted stem cell is its zygote start; without one,
  // the interpreter boots for this request (cold).
  StemCellPool* stems = StemCellsFor(family);
  struct ResumeAfter {  // a drop-zygote pauses the pool until this start (a cold one) is done
    StemCellPool* pool;
    ~ResumeAfter() {
      if (pool) pool->Resume();
    }
  } resume_after{stems};
  // Policy on: the function's snapshot first (it holds its init); auto keeps the faster stem cell.
  if (snapshots && stems && policy == SnapshotPolicy::kOn)
    if (auto restored = TryRestore(fn, policy)) return std::move(*restored);
  // Stem cells boot with the daemon's default network; an egress function on a none daemon skips them.
  const bool stem_fits = !(options_.network == sandbox::net::NetworkMode::kNone &&
                           NetworkOf(cfg, options_.network) == sandbox::net::NetworkMode::kEgress);
  if (stems && stem_fits) {
    if (auto cell = stems->Take()) {
      Result<Launched> out = Launched{};
      out->start = StartKind::kZygote;
      out->stages.emplace_back("stem_cell", MsSince(t0));
      if (auto s = StartStemCell(fn, *cell, &*out); s) {
        if (out->init_error.outcome == Outcome::kSuccess) out->instance = std::move(cell->instance);
        out->stages.emplace_back("start_total", MsSince(t0));
        RecordStart(fn, policy, snapshots, out);
        return out;
      } else {
        log::Warning("stem cell " + std::to_string(cell->instance->pid()) + " could not take " +
                     cfg.name + " (" + s.error().ToString() + "): starting it cold");
      }
    }
  }
  if (snapshots && !(stems && policy == SnapshotPolicy::kOn))
    if (auto restored = TryRestore(fn, policy)) return std::move(*restored);
  if (BindsZygotes(family))
    if (auto preforked = StartPreforked(fn)) {
      RecordStart(fn, policy, snapshots, *preforked);
      return std::move(*preforked);
    }
  auto out = ForkAndStart(fn, false);
  RecordStart(fn, policy, snapshots, out);
  if (out && out->instance && BindsZygotes(family))  // its next new instance is forked ahead
    preforks_->Want(registry::VersionKey(cfg), fn, Generation(cfg), family);
  return out;
}

Result<Launcher::Forked> Launcher::ForkDeployed(const registry::Deployed& fn, bool exec_runner,
                                                bool* booted, Stages* stages, bool on_demand) {
  const auto& cfg = fn.config;
  auto code = code_mounts_->ForInstance(fn);
  if (!code) return code.error();
  auto opt = code_mounts_->LayersForInstance(fn);
  if (!opt) {
    close(*code);
    return opt.error();
  }
  // A checkpointed instance keeps a tmpfs /tmp: CRIU saves and restores a tmpfs's files, not a
  // disk-backed mount's.
  TmpLease tmp = exec_runner ? TmpLease() : TakeTmpArea(cfg, stages);
  auto forked = ForkInstance(registry::RuntimeFamily(cfg.runtime), &cfg, LimitsFor(cfg.memory_mb), *code,
                             exec_runner, booted, stages, *opt, tmp.fd(), on_demand);
  close(*code);
  if (*opt >= 0) close(*opt);
  if (forked)
    forked->instance->KeepTmp(std::move(tmp));
  else
    tmp.Discard();  // a child that failed may not be reaped yet: not reused
  return forked;
}

Result<std::unique_ptr<Instance>> Launcher::MakePreforked(const registry::Deployed& fn) {
  const auto& cfg = fn.config;
  bool booted = false;
  Stages stages;
  auto forked = ForkDeployed(fn, false, &booted, &stages);  // its /tmp too, ahead of demand
  if (!forked) return forked.error();
  auto& instance = forked->instance;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  if (auto s = instance->AwaitSetup(deadline, &stages); !s) return s.error();
  // Python's runner sets up the function's environment now, off its start (~1 ms of copy-on-write
  // faults); its init message is what the start would send (the log stream names this instance).
  if (registry::RuntimeFamily(cfg.runtime) == "python3")
    if (auto s = instance->Prepare(InitMessage(cfg, cfg.version), deadline); !s) return s.error();
  instance->AssignTo(cfg.name, Generation(cfg), cfg.memory_mb);
  return std::move(instance);
}

std::optional<Result<Launched>> Launcher::StartPreforked(const registry::Deployed& fn) {
  const auto& cfg = fn.config;
  auto t0 = Clock::now();
  const std::string key = registry::VersionKey(cfg);
  auto instance = preforks_->Take(key, Generation(cfg));
  if (!instance) return std::nullopt;
  Launched out;
  out.start = StartKind::kZygote;  // a new instance of the function's zygote, forked ahead
  out.stages.emplace_back("preforked", MsSince(t0));
  if (auto s = StartInstance(cfg, instance.get(), &out); !s) {
    log::Warning("preforked instance " + std::to_string(instance->pid()) + " of " + key +
                 " could not start (" + s.error().ToString() + "): forking another");
    return std::nullopt;
  }
  if (out.init_error.outcome == Outcome::kSuccess) {
    out.instance = std::move(instance);
    preforks_->Want(key, fn, Generation(cfg), registry::RuntimeFamily(cfg.runtime));  // its successor
  }
  out.stages.emplace_back("start_total", MsSince(t0));
  return Result<Launched>(std::move(out));
}

Result<Launched> Launcher::ForkAndStart(const registry::Deployed& fn, bool exec_runner) {
  const auto& cfg = fn.config;
  const std::string family = registry::RuntimeFamily(cfg.runtime);
  auto t0 = Clock::now();
  Launched out;
  bool booted = false;
  auto forked = ForkDeployed(fn, exec_runner, &booted, &out.stages, /*on_demand=*/true);
  if (!forked) return forked.error();
  out.start = booted || UsesStemCells(family) ? StartKind::kCold : StartKind::kZygote;
  auto& instance = forked->instance;
  instance->AssignTo(cfg.name, Generation(cfg), cfg.memory_mb);
  if (auto s = StartInstance(cfg, instance.get(), &out); !s) return s.error();
  if (out.init_error.outcome == Outcome::kSuccess) out.instance = std::move(instance);
  out.stages.emplace_back("start_total", MsSince(t0));
  return out;
}


}  // namespace forklet::core
