// Snapshots of initialized instances: CRIU detection, the background checkpoint of a fresh
// instance, restores (start kind restore), the per-function decision and its report.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>

#include "runtime/core/launch_timing.h"
#include "runtime/core/launcher.h"
#include "runtime/log/log.h"

namespace forklet::core {
namespace fs = std::filesystem;

std::optional<SnapshotPolicy> ParseSnapshotPolicy(const std::string& text) {
  if (text == "off") return SnapshotPolicy::kOff;
  if (text == "on") return SnapshotPolicy::kOn;
  if (text == "auto") return SnapshotPolicy::kAuto;
  return std::nullopt;
}

Status Launcher::PrepareSnapshots() {
  if (options_.netns_pool_size == 0) {
    criu_off_reason_ = "snapshots need the net namespace pool (LauncherOptions::netns_pool_size is 0)";
    log::Notice("snapshots off: " + criu_off_reason_);
    return {};
  }
  auto store = snapshot::SnapshotStore::Open(options_.state_dir + "/snapshots", options_.snapshot_max_bytes);
  if (!store) return store.error();
  snapshots_ = std::move(store.value());
  // criu --root: the mount points of the template root, nothing else (it stays empty; restored
  // mounts are the copy's own).
  restore_root_ = options_.state_dir + "/sandbox/restore-root";
  std::error_code ec;
  fs::remove_all(restore_root_, ec);
  fs::create_directories(restore_root_, ec);
  if (ec) return SysError("create " + restore_root_, ec.value());
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"}) {
    struct stat st;
    if (lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      fs::copy_symlink(dir, restore_root_ + dir, ec);
    } else {
      fs::create_directory(restore_root_ + dir, ec);
    }
    if (ec) return SysError("create " + restore_root_ + dir, ec.value());
  }
  for (const char* d : {"/etc", "/dev", "/var", "/var/task", "/var/runtime", "/tmp", "/proc"})
    fs::create_directory(restore_root_ + d, ec);
  if (ec) return SysError("create the restore root in " + restore_root_, ec.value());
  // CRIU is proven by use (a checkpoint and restore of a trivial process) in the background:
  // snapshots start once that passed, and the daemon's start does not wait for it.
  snapshotter_ = std::thread([this] {
    if (DetectCriu()) SnapshotLoop();
  });
  return {};
}

bool Launcher::DetectCriu() {
  auto criu = snapshot::Criu::Detect(options_.criu, options_.criu_preload,
                                     options_.state_dir + "/sandbox/criu-self-test");
  const auto info = criu->info();
  {
    std::lock_guard lock(snap_mu_);
    criu_ = std::move(criu);
  }
  if (!info.available) {
    log::Warning("snapshots off: " + info.reason);
    return false;
  }
  criu_ready_ = true;
  log::Notice("snapshots on: criu " + info.version + " at " + info.path + " (self-test " + info.self_test + ")");
  return true;
}

SnapshotPolicy Launcher::SnapshotPolicyOf(const registry::FunctionConfig& cfg) const {
  auto it = cfg.environment.find("FORKLET_SNAPSHOT");
  if (it != cfg.environment.end())
    if (auto p = ParseSnapshotPolicy(it->second)) return *p;
  return options_.snapshot_policy;
}

std::optional<Result<Launched>> Launcher::TryRestore(const registry::Deployed& fn, SnapshotPolicy policy) {
  const auto& cfg = fn.config;
  auto images = snapshots_->Find(cfg.name, Generation(cfg));
  if (!images || !ChooseRestore(cfg.name, policy)) return std::nullopt;
  auto restored = RestoreInstance(fn, *images);
  if (restored) return restored;
  // Never the invocation's failure: the snapshot goes, a zygote start follows.
  log::Warning("restore of " + cfg.name + " failed, starting it from the zygote: " +
               restored.error().ToString());
  snapshots_->Remove(cfg.name);
  std::lock_guard lock(snap_mu_);
  auto& st = snap_[cfg.name];
  ++st.failures;
  st.last_error = restored.error().ToString();
  return std::nullopt;
}

void Launcher::RecordStart(const registry::Deployed& fn, SnapshotPolicy policy, bool snapshots,
                           const Result<Launched>& out) {
  if (!snapshots || !out || !out->instance) return;
  const auto& cfg = fn.config;
  double start_ms = out->stages.empty() ? 0 : out->stages.back().second;
  std::lock_guard lock(snap_mu_);
  auto& st = snap_[cfg.name];
  if (out->start == StartKind::kZygote)
    st.zygote_start_ms = st.zygote_start_ms == 0 ? start_ms : 0.7 * st.zygote_start_ms + 0.3 * start_ms;
  bool worth = policy == SnapshotPolicy::kOn || out->init_ms >= kAutoMinInitMs;
  if (!worth) {
    st.decision = "no snapshot: init " + Ms(out->init_ms) + " is below " + Ms(kAutoMinInitMs);
  } else if (st.dump_failures >= kMaxSnapshotFailures) {
    st.decision = "no snapshot: " + std::to_string(st.dump_failures) +
                  " snapshots of this deployment failed, the last: " + st.last_error;
  } else if (!st.queued && !snapshots_->Find(cfg.name, Generation(cfg))) {
    st.queued = true;
    snapshot_queue_.push_back(fn);
    snap_cv_.notify_one();
  }
}

bool Launcher::ChooseRestore(const std::string& function, SnapshotPolicy policy) {
  std::lock_guard lock(snap_mu_);
  auto& st = snap_[function];
  if (policy == SnapshotPolicy::kOn) {
    st.decision = "restore: policy on";
    return true;
  }
  if (st.restore_ms == 0 || st.zygote_start_ms == 0) {
    st.decision = "restore: not measured yet";
    return true;
  }
  bool restore = st.restore_ms < st.zygote_start_ms;
  st.decision = std::string(restore ? "restore" : "zygote") + ": restore " + Ms(st.restore_ms) +
                (restore ? " < " : " >= ") + "zygote start with init " + Ms(st.zygote_start_ms);
  return restore;
}

Result<Launched> Launcher::RestoreInstance(const registry::Deployed& fn, const std::string& images) {
  const auto& cfg = fn.config;
  Launched out;
  out.start = StartKind::kRestore;
  auto t0 = Clock::now();
  auto cgroup = AcquireCgroup(LimitsFor(cfg.memory_mb), &out.stages);
  if (!cgroup) return cgroup.error();
  auto* procs = &cgroup->procs;
  auto netns = TakeNetns(NetworkOf(cfg, options_.network), false);
  const int net_fd = netns ? netns->fd : -1;
  int channel[2] = {-1, -1}, log[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : *procs) close(fd);
    for (int fd : {net_fd, channel[1], log[1]})
      if (fd >= 0) close(fd);
  };
  if (net_fd < 0) {
    close_all();
    return MakeError("restore", "no pooled net namespace is ready");
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0 || pipe2(log, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    if (channel[0] >= 0) close(channel[0]);
    return SysError("restore: channel", e);
  }
  fcntl(channel[0], F_SETFL, O_NONBLOCK);
  fcntl(log[0], F_SETFL, O_NONBLOCK);
  fcntl(log[0], F_SETPIPE_SZ, 1 << 20);
  snapshot::RestoreRequest req;
  req.images_dir = images;
  req.root_dir = restore_root_;
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"}) req.mount_sources[dir] = dir;
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"})
    req.mount_sources[dev] = dev;
  req.mount_sources["/etc"] = etc_dir_;
  req.mount_sources["/var/task"] = fn.code_dir;
  req.mount_sources["/var/runtime"] = options_.runners.runners_dir;
  req.mount_sources["/usr/bin/sh"] = "/usr/bin/bash";  // the template root's bash as /bin/sh
  req.channel_fd = channel[1];
  req.log_fd = log[1];
  req.net_fd = net_fd;
  req.cgroup_procs_fds = *procs;
  auto t_criu = Clock::now();
  auto pid = criu_->Restore(req);
  close_all();
  if (!pid) {
    close(channel[0]);
    close(log[0]);
    return pid.error();
  }
  out.stages.emplace_back("criu_restore", MsSince(t_criu));
  auto instance = std::make_unique<Instance>(cfg.name, Generation(cfg), cfg.memory_mb, *pid, channel[0],
                                             log[0], std::move(cgroup->cgroup));
  auto t_resume = Clock::now();
  if (auto s = instance->Resume(Clock::now() + std::chrono::seconds(10)); !s) return s.error();
  out.stages.emplace_back("resume", MsSince(t_resume));
  double total = MsSince(t0);
  out.stages.emplace_back("start_total", total);
  out.instance = std::move(instance);
  std::lock_guard lock(snap_mu_);
  auto& st = snap_[cfg.name];
  ++st.restores;
  st.restore_ms = st.restore_ms == 0 ? total : 0.7 * st.restore_ms + 0.3 * total;
  return out;
}

void Launcher::ForgetSnapshot(const std::string& function) {
  if (!snapshots_) return;
  {
    std::lock_guard lock(snap_mu_);
    ++changes_[function];  // a dump under way for the old deployment is discarded
    snap_.erase(function);
  }
  snapshots_->Remove(function);
}

void Launcher::SnapshotLoop() {
  for (;;) {
    registry::Deployed fn;
    uint64_t change = 0;
    {
      std::unique_lock lock(snap_mu_);
      snap_cv_.wait(lock, [&] { return stopping_ || !snapshot_queue_.empty(); });
      if (stopping_) return;
      fn = std::move(snapshot_queue_.front());
      snapshot_queue_.pop_front();
      change = changes_[fn.config.name];
    }
    auto t0 = Clock::now();
    auto made = TakeSnapshot(fn, change);
    std::lock_guard lock(snap_mu_);
    auto& st = snap_[fn.config.name];
    st.queued = false;
    if (!made) {
      ++st.failures;
      ++st.dump_failures;
      st.last_error = made.error().ToString();
      log::Warning("snapshot of " + fn.config.name + " failed: " + st.last_error);
    } else {
      st.dump_ms = MsSince(t0);
    }
  }
}

Status Launcher::TakeSnapshot(const registry::Deployed& fn, uint64_t change) {
  // A fresh instance just for the checkpoint: it has served nobody, so it holds no request's data.
  auto source = ForkAndStart(fn, true);
  if (!source) return source.error();
  if (!source->instance) return MakeError("snapshot", "the function's init failed");
  auto& instance = *source->instance;
  struct DestroySource {  // never left alive: criu killed it, or a failure before the dump did not
    Instance* i;
    ~DestroySource() { i->Destroy(); }
  } destroy{&instance};
  auto mounts = snapshot::HostMounts(instance.pid());
  if (!mounts) return mounts.error();
  // Its size before it is written: a dump never fills the store's bound or the disk.
  const uint64_t estimate = snapshot::EstimateDumpBytes(instance.pid());
  const uint64_t bound = snapshots_->Usage().max_bytes;
  struct statvfs disk {};
  uint64_t free_bytes = statvfs(snapshots_->dir().c_str(), &disk) == 0
                            ? static_cast<uint64_t>(disk.f_bavail) * disk.f_frsize
                            : 0;
  const uint64_t keep_free = 256ull << 20;  // the ledger, code and events need the disk too
  if (estimate > bound)
    return MakeError("snapshot", "the instance holds " + std::to_string(estimate >> 20) +
                                     " MB, more than all snapshots may take (--snapshot-mb " +
                                     std::to_string(bound >> 20) + ")");
  if (estimate + keep_free > free_bytes)
    return MakeError("snapshot", "the instance holds " + std::to_string(estimate >> 20) + " MB and " +
                                     snapshots_->dir() + " has " + std::to_string(free_bytes >> 20) +
                                     " MB free");
  auto dir = snapshots_->Prepare(fn.config.name);
  if (!dir) return dir.error();
  snapshot::DumpRequest request{instance.pid(), *dir, *mounts};
  // A deadline that grows with what it writes: 20 s, and a second per 50 MB.
  request.timeout_ms = 20000 + static_cast<int>(estimate / (50ull << 20)) * 1000;
  auto dumped = criu_->Dump(request);
  if (!dumped) {
    snapshots_->Discard(*dir);
    return dumped;
  }
  {
    std::lock_guard lock(snap_mu_);
    if (changes_[fn.config.name] != change) {  // updated or deleted meanwhile
      snapshots_->Discard(*dir);
      return {};
    }
  }
  return snapshots_->Commit(fn.config.name, Generation(fn.config), *dir);
}

nlohmann::json Launcher::SnapshotReport() {
  std::lock_guard lock(snap_mu_);
  nlohmann::json out{{"criu", {{"available", criu_ready_.load()}}}};
  if (criu_) {
    const auto& i = criu_->info();
    out["criu"]["state"] = i.available ? "ready" : "off";
    out["criu"]["path"] = i.path;
    if (!i.version.empty()) out["criu"]["version"] = i.version;
    if (!i.self_test.empty()) out["criu"]["self_test"] = i.self_test;
    if (!i.available) out["criu"]["reason"] = i.reason;
  } else if (snapshots_) {
    out["criu"]["state"] = "testing";
    out["criu"]["reason"] = "the CRIU self-test is running";
  } else {
    out["criu"]["state"] = "off";
    out["criu"]["reason"] = criu_off_reason_;
  }
  if (!snapshots_) return out;
  auto u = snapshots_->Usage();
  out["store"] = {{"snapshots", u.snapshots}, {"bytes", u.bytes}, {"max_bytes", u.max_bytes}};
  nlohmann::json fns = nlohmann::json::object();
  for (const auto& [name, st] : snap_) {
    nlohmann::json f{{"restores", st.restores}, {"failures", st.failures},
                     {"restore_ms", st.restore_ms}, {"zygote_start_ms", st.zygote_start_ms},
                     {"dump_ms", st.dump_ms}, {"decision", st.decision}, {"dumping", st.queued}};
    if (auto size = snapshots_->Size(name)) f["size_bytes"] = *size;
    if (!st.last_error.empty()) f["last_error"] = st.last_error;
    fns[name] = f;
  }
  out["functions"] = fns;
  return out;
}

}  // namespace forklet::core
