// libcgroup behind one lock: its mount table kept current, cgroups created, configured and removed.
#include "sandbox/cgroup_lib.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

// Exported by libcgroup 2.0 (symbol version CGROUP_2.0) but declared only in its private header.
extern "C" {
enum forklet_cg_version_t { kCgroupUnknown = 0, kCgroupV1 = 1, kCgroupV2 = 2 };
int cgroup_get_controller_version(const char* controller, forklet_cg_version_t* version);
}

namespace forklet::sandbox::cglib {
namespace {

std::mutex g_mu;          // around every libcgroup call of this process
bool g_inited = false;    // cgroup_init() succeeded at least once
int g_mounts_fd = -1;     // /proc/self/mounts: poll() says POLLPRI|POLLERR after a (u)mount
pid_t g_pid = 0;          // who opened it: a forked child watches its own mount namespace
MountTable g_table;

// libcgroup's code as an Error: ECGOTHER carries the system's errno.
Error LibError(const std::string& op, int code) {
  int err = 0;
  switch (code) {
    case ECGOTHER: err = cgroup_get_last_errno(); break;
    case ECGNONEMPTY: err = EBUSY; break;
    case ECGROUPNOTEXIST: err = ENOENT; break;
    case ECGROUPNOTMOUNTED:
    case ECGROUPSUBSYSNOTMOUNTED: err = ENODEV; break;
    default: break;
  }
  return Error{op, err, std::string("libcgroup: ") + cgroup_strerror(code)};
}

bool MountsChanged() {
  if (g_mounts_fd < 0) return true;
  pollfd p{g_mounts_fd, POLLPRI, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR)) != 0;
}

Status ReadTable() {
  MountTable t;
  void* handle = nullptr;
  cgroup_mount_point info;
  int ret = cgroup_get_controller_begin(&handle, &info);
  bool any_v1 = false, any_v2 = false;
  while (ret == 0) {
    ControllerMount m{info.name, info.path, false};
    forklet_cg_version_t version = kCgroupUnknown;
    if (cgroup_get_controller_version(info.name, &version) == 0) m.v2 = version == kCgroupV2;
    (m.v2 ? any_v2 : any_v1) = true;
    t.controllers.push_back(std::move(m));
    ret = cgroup_get_controller_next(&handle, &info);
  }
  cgroup_get_controller_end(&handle);
  if (ret != ECGEOF && ret != 0) return LibError("list the mounted cgroup controllers", ret);
  t.mode = any_v1 && any_v2 ? Mode::kHybrid : any_v1 ? Mode::kV1 : any_v2 ? Mode::kV2 : Mode::kNone;
  g_table = std::move(t);
  return {};
}

// Under g_mu: (re)reads the mount table when it is new or the mounts changed.
Status RefreshLocked() {
  if (g_inited && g_pid == getpid() && !MountsChanged()) return {};
  if (g_pid != getpid() && g_mounts_fd >= 0) {
    close(g_mounts_fd);
    g_mounts_fd = -1;
  }
  g_pid = getpid();
  if (g_mounts_fd < 0) g_mounts_fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC);
  // Read before cgroup_init: a change while it runs shows at the next call instead of being lost.
  (void)MountsChanged();
  int ret = cgroup_init();
  // ECGROUPNOTMOUNTED: no hierarchy at all; the table is then empty, which callers report.
  if (ret != 0 && ret != ECGROUPNOTMOUNTED) return LibError("cgroup_init", ret);
  g_inited = true;
  return ReadTable();
}

std::string Strip(const std::string& rel) {
  size_t i = rel.find_first_not_of('/');
  return i == std::string::npos ? std::string() : rel.substr(i);
}

// A libcgroup cgroup object, freed on scope exit.
struct Handle {
  cgroup* cg = nullptr;
  explicit Handle(const std::string& rel) : cg(cgroup_new_cgroup(Strip(rel).c_str())) {}
  ~Handle() {
    if (cg) cgroup_free(&cg);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

Status AddControllers(Handle* h, const std::vector<std::string>& controllers,
                      const std::string& op) {
  if (!h->cg) return SysError(op, ENOMEM);
  for (const auto& c : controllers)
    if (!cgroup_add_controller(h->cg, c.c_str()))
      return Error{op, EINVAL, "libcgroup: cannot add controller " + c};
  return {};
}

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kV1: return "v1";
    case Mode::kV2: return "v2";
    case Mode::kHybrid: return "hybrid";
    case Mode::kNone: break;
  }
  return "none";
}

const ControllerMount* MountTable::Find(const std::string& controller) const {
  for (const auto& m : controllers)
    if (m.controller == controller) return &m;
  return nullptr;
}

Result<MountTable> Mounts() {
  std::lock_guard lock(g_mu);
  if (auto s = RefreshLocked(); !s) return s.error();
  return g_table;
}

Result<Location> Locate(const MountTable& table, const std::string& dir) {
  size_t best = 0;
  Location loc;
  for (const auto& m : table.controllers) {
    const std::string& mp = m.mount_point;
    const bool below = dir.size() > mp.size() && dir.compare(0, mp.size(), mp) == 0 &&
                       (dir[mp.size()] == '/' || mp == "/");
    if (!below && dir != mp) continue;
    if (mp.size() > best) {
      best = mp.size();
      loc.controllers.clear();
    }
    if (mp.size() == best) {
      loc.rel = Strip(dir.substr(mp.size()));
      loc.controllers.push_back(m.controller);
      loc.v2 = m.v2;
    }
  }
  if (loc.controllers.empty())
    return Error{"find " + dir + " in libcgroup's mount table", ENOENT,
                 "no mounted controller holds it"};
  return loc;
}

Status Create(const std::string& rel, const std::vector<std::string>& controllers, bool exclusive) {
  const std::string op = "create cgroup " + rel;
  std::lock_guard lock(g_mu);
  if (auto s = RefreshLocked(); !s) return s;
  if (exclusive && !controllers.empty()) {
    // libcgroup's mkdir accepts an existing directory: tell it apart first.
    const ControllerMount* m = g_table.Find(controllers.front());
    struct stat st;
    if (m && stat((m->mount_point + "/" + Strip(rel)).c_str(), &st) == 0)
      return SysError(op, EEXIST);
  }
  Handle h(rel);
  if (auto s = AddControllers(&h, controllers, op); !s) return s;
  if (int ret = cgroup_create_cgroup(h.cg, /*ignore_ownership=*/1); ret != 0)
    return LibError(op, ret);
  return {};
}

Status Modify(const std::string& rel, const std::vector<Setting>& settings) {
  const std::string op = "configure cgroup " + rel;
  std::lock_guard lock(g_mu);
  if (auto s = RefreshLocked(); !s) return s;
  Handle h(rel);
  if (!h.cg) return SysError(op, ENOMEM);
  for (const auto& s : settings) {
    cgroup_controller* c = cgroup_get_controller(h.cg, s.controller.c_str());
    if (!c) c = cgroup_add_controller(h.cg, s.controller.c_str());
    if (!c) return Error{op, EINVAL, "libcgroup: cannot add controller " + s.controller};
    if (int ret = cgroup_add_value_string(c, s.file.c_str(), s.value.c_str()); ret != 0)
      return LibError(op + " (" + s.file + ")", ret);
  }
  if (int ret = cgroup_modify_cgroup(h.cg); ret != 0) return LibError(op, ret);
  return {};
}

Status Remove(const std::string& rel, const std::vector<std::string>& controllers) {
  const std::string op = "remove cgroup " + rel;
  std::lock_guard lock(g_mu);
  if (auto s = RefreshLocked(); !s) return s;
  Handle h(rel);
  if (auto s = AddControllers(&h, controllers, op); !s) return s;
  int ret = cgroup_delete_cgroup_ext(h.cg, CGFLAG_DELETE_EMPTY_ONLY);
  if (ret != 0 && ret != ECGROUPNOTEXIST) {
    Error e = LibError(op, ret);
    if (e.err != ENOENT) return e;
  }
  // 2.0.2 returns 0 when rmdir failed with EBUSY (tasks or children left): look.
  for (const auto& c : controllers) {
    struct stat st;
    const ControllerMount* m = g_table.Find(c);
    if (m && stat((m->mount_point + "/" + Strip(rel)).c_str(), &st) == 0)
      return Error{op, EBUSY, "still there after libcgroup removed it (tasks or children left)"};
  }
  return {};
}

std::string Reach::Rel(const std::string& dir, size_t i) const {
  const std::string below = dir.substr(roots[i].size());
  return where[i].rel.empty() ? Strip(below) : where[i].rel + below;
}

int Reach::RemoveBelow(const std::string& dir, size_t i) const {
  auto s = Remove(Rel(dir, i), where[i].controllers);
  return s.ok() ? 0 : (s.error().err != 0 ? s.error().err : EIO);
}

Reach ReachRoots(const std::vector<std::string>& parents, const std::string& leaf) {
  Reach r;
  auto mounts = Mounts();
  if (!mounts) return r;
  for (const auto& parent : parents) {
    auto loc = Locate(*mounts, parent);
    if (!loc) return Reach{};
    loc->rel += (loc->rel.empty() ? "" : "/") + leaf;
    r.roots.push_back(parent + "/" + leaf);
    r.where.push_back(std::move(*loc));
  }
  return r;
}

Status Attach(const std::string& rel, const std::vector<std::string>& controllers, int tid) {
  const std::string op = "attach " + std::to_string(tid) + " to cgroup " + rel;
  std::lock_guard lock(g_mu);
  if (auto s = RefreshLocked(); !s) return s;
  Handle h(rel);
  if (auto s = AddControllers(&h, controllers, op); !s) return s;
  if (int ret = cgroup_attach_task_pid(h.cg, tid); ret != 0) return LibError(op, ret);
  return {};
}

}  // namespace forklet::sandbox::cglib
