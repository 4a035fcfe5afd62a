// SIGHUP: the configuration is read again (the file, then the same flags) and what can change
#include "runtime/daemon/reload.h"

#include <filesystem>
#include <string>

#include "runtime/log/log.h"

namespace forklet::daemon {

bool Reload(int argc, char** argv, Options* running, core::Scheduler* scheduler) {
  Options fresh;
  std::string message;
  bool help = false;
  if (!ParseOptions(argc, argv, &fresh, &message, &help)) {
    log::Error("reload: " + message + "; keeping the running configuration");
    return false;
  }
  std::error_code ec;
  auto state_dir = std::filesystem::weakly_canonical(fresh.state_dir, ec);
  if (!ec) fresh.state_dir = state_dir.string();
  FinishOptions(&fresh);

  // Settings the daemon was built around: a change waits for the next restart.
  auto restart_only = [&](const char* name, bool changed) {
    if (changed)
      log::Warning(std::string("reload: \"") + name + "\" changed; it applies at the next restart");
  };
  restart_only("listen", fresh.listen != running->listen);
  restart_only("state-dir", fresh.state_dir != running->state_dir);
  restart_only("socket", fresh.socket_path != running->socket_path);
  restart_only("tls-cert", fresh.tls_cert != running->tls_cert);
  restart_only("tls-key", fresh.tls_key != running->tls_key);
  restart_only("cgroup-pool",
               fresh.launcher.cgroup_pool_size != running->launcher.cgroup_pool_size);
  restart_only("tmp-size-mb", fresh.launcher.tmp_size_bytes != running->launcher.tmp_size_bytes);
  restart_only("tmp-pool", fresh.launcher.tmp_pool_size != running->launcher.tmp_pool_size);
  restart_only("netns-reuse",
               fresh.launcher.netns_reuse_per_function != running->launcher.netns_reuse_per_function);
  restart_only("subtree-pids",
               fresh.launcher.subtree_pids_max != running->launcher.subtree_pids_max);
  restart_only("instances-cpu-weight",
               fresh.launcher.instances_cpu_weight != running->launcher.instances_cpu_weight);
  restart_only("answer-spin-us", fresh.scheduler.answer_spin != running->scheduler.answer_spin);
  restart_only("max-code-mb", fresh.archive.max_zip_bytes != running->archive.max_zip_bytes);
  const auto &fresh_runners = fresh.launcher.runners, &running_runners = running->launcher.runners;
  restart_only("runners-dir", fresh_runners.runners_dir != running_runners.runners_dir);
  restart_only("zygote-lib", fresh_runners.zygote_library != running_runners.zygote_library);
  restart_only("zygote-exe", fresh_runners.zygote_executable != running_runners.zygote_executable);
  restart_only("warmup", fresh.warmup != running->warmup);
  restart_only("node-stem-cells", fresh.launcher.node_stem_cells != running->launcher.node_stem_cells);
  restart_only("preforked", fresh.launcher.preforked != running->launcher.preforked);
  restart_only("spare-zygotes", fresh.launcher.zygotes.spares != running->launcher.zygotes.spares);

  const auto& s = fresh.scheduler;
  scheduler->SetLiveOptions(s.keep_alive, s.max_instances_per_function, s.memory_budget_mb);
  running->scheduler.keep_alive = s.keep_alive;
  running->scheduler.max_instances_per_function = s.max_instances_per_function;
  running->scheduler.memory_budget_mb = s.memory_budget_mb;
  running->drain_grace = fresh.drain_grace;
  running->prices = fresh.prices;
  running->config_path = fresh.config_path;
  const auto keep_alive_s = std::chrono::duration_cast<std::chrono::seconds>(s.keep_alive).count();
  const std::string from =
      fresh.config_path.empty() ? std::string(" (no file)") : " from " + fresh.config_path;
  log::Notice("reloaded the configuration" + from + ": keep-alive " + std::to_string(keep_alive_s) +
              " s, max-concurrency " + std::to_string(s.max_instances_per_function) +
              ", memory budget " + std::to_string(s.memory_budget_mb) + " MB, drain grace " +
              std::to_string(fresh.drain_grace.count()) + " s");
  return true;
}

}  // namespace forklet::daemon
