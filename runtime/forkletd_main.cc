// forkletd: the node daemon. Opens the state, starts the zygotes and serves the API; SIGHUP
// reloads the configuration, SIGTERM (or SIGINT) drains and stops.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "runtime/api/admin_api.h"
#include "runtime/api/events_api.h"
#include "runtime/api/http_server.h"
#include "runtime/api/sigv4.h"
#include "runtime/api/tls.h"
#include "runtime/api/lambda_api.h"
#include "runtime/api/reporting_api.h"
#include "runtime/billing/ledger.h"
#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/log/log.h"
#include "runtime/daemon/notify.h"
#include "runtime/daemon/options.h"
#include "runtime/daemon/reload.h"
#include "runtime/daemon/signals.h"
#include "runtime/events/event_log.h"
#include "runtime/events/event_queue.h"
#include "runtime/events/invoke_config.h"
#include "runtime/metrics/invocation_recorder.h"
#include "runtime/metrics/latency_stats.h"
#include "runtime/registry/registry.h"
#include "sandbox/cgroup_delegation.h"

namespace fs = std::filesystem;
using namespace forklet;

namespace {

// A start that cannot go on. Thrown, not exit(): what was already made (the cgroup tree, the
// function network, zygotes) is torn down on the way out, as at a normal stop.
struct StartFailure {
  std::string message;
};

[[noreturn]] void Die(const std::string& message) { throw StartFailure{message}; }

// STATUS= for systemd: what `systemctl status forkletd` shows.
std::string StatusLine(core::Scheduler* scheduler, core::Launcher* launcher) {
  auto c = scheduler->Counts();
  auto budget = scheduler->options().memory_budget_mb;
  return std::string(scheduler->draining() ? "draining" : "ready") + ": instances " +
         std::to_string(c.idle) + " idle, " + std::to_string(c.busy - c.starting) + " running, " +
         std::to_string(c.starting) + " starting; " + std::to_string(scheduler->InFlight()) +
         " invocations in flight; " + std::to_string(launcher->Zygotes().size()) + " zygotes; " +
         std::to_string(c.memory_mb) + " of " + std::to_string(budget) + " MB reserved";
}

}  // namespace

static int Run(int argc, char** argv) {
  daemon::Options options;
  std::string message;
  bool help = false;
  if (!daemon::ParseOptions(argc, argv, &options, &message, &help)) {
    if (help) {
      fputs(message.c_str(), stdout);
      return 0;
    }
    Die(message + " (forkletd --help lists the options)");
  }
  if (geteuid() != 0) Die("must run as root (it creates namespaces, mounts and cgroups)");
  // Unsigned requests from beyond loopback only when asked for by name.
  if (const std::string host = options.listen.substr(0, options.listen.rfind(':'));
      options.credentials_path.empty() && !options.insecure_no_auth && !options.listen.empty() &&
      host != "127.0.0.1" && host != "localhost" && host != "[::1]")
    Die("--listen " + options.listen + " reaches beyond loopback: give --credentials FILE (access keys "
        "that sign requests), or --insecure-no-auth to take unsigned requests from anyone there");
  if (!options.credentials_path.empty() && options.insecure_no_auth)
    Die("--credentials and --insecure-no-auth contradict each other: choose one");
  // Bad certificate files stop the start before anything else is set up.
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty()) Die("--tls-cert and --tls-key go together: give both");
    if (auto tls = api::TlsCertificate::Load(options.tls_cert, options.tls_key); !tls) Die(tls.error().ToString());
  }
  // Access keys too are checked before anything is made on the host.
  std::unique_ptr<api::CredentialStore> credentials;
  if (!options.credentials_path.empty()) {
    auto loaded = api::CredentialStore::Load(options.credentials_path);
    if (!loaded) Die(loaded.error().ToString());
    credentials = std::move(loaded.value());
  }
  std::error_code ec;
  fs::create_directories(options.state_dir, ec);
  if (ec) Die("--state-dir " + options.state_dir + ": " + ec.message());
  options.state_dir = fs::canonical(options.state_dir).string();
  chmod(options.state_dir.c_str(), 0711);
  daemon::FinishOptions(&options);
  if (!fs::exists(options.launcher.runners.zygote_library))
    Die("zygote library not found: " + options.launcher.runners.zygote_library + " (use --zygote-lib)");
  if (!fs::exists(options.launcher.runners.runners_dir + "/python/forklet_zygote.py"))
    Die("python runner not found in " + options.launcher.runners.runners_dir + " (use --runners-dir)");
  if (access(options.launcher.runners.zygote_executable.c_str(), X_OK) != 0)
    log::Warning("forklet-zygote not found at " + options.launcher.runners.zygote_executable +
                 ": the native, provided and nodejs runtimes are unavailable (use --zygote-exe)");

  if (auto s = daemon::InstallSignalEvents(); !s) Die(s.error().ToString());
  daemon::ServiceNotifier notifier;  // first: the watchdog is pinged while zygotes start
  notifier.Status("starting");
  // systemd's Delegate=yes on cgroup v2: into the supervisor leaf before any child process exists.
  if (auto delegated = sandbox::DelegatedV2CgroupDir(); !delegated) {
    Die(delegated.error().ToString());
  } else if (!delegated->empty()) {
    auto d = sandbox::EnterSupervisorCgroup(*delegated);
    if (!d) Die("cgroup delegation: " + d.error().ToString());
    log::Info("cgroup v2 delegation: in " + d->delegated_dir + "/" + sandbox::kSupervisorCgroup +
              "; enabled below it: " + (d->enabled.empty() ? "none" : d->enabled) +
              (d->missing.empty() ? "" : "; not offered: " + d->missing));
  }

  auto registry = registry::Registry::Open(options.state_dir, options.archive);
  if (!registry) Die("state dir: " + registry.error().ToString());
  options.launcher.memory_budget_mb = options.scheduler.memory_budget_mb;
  auto launcher = core::Launcher::Create(options.launcher);
  if (!launcher) Die(launcher.error().ToString());
  if (options.warmup) {
    if (auto s = (*launcher)->WarmUp(); !s) Die("python zygote: " + s.error().ToString());
  }
  auto scheduler = std::make_unique<core::Scheduler>(options.scheduler, launcher->get());
  if (options.warmup)
    for (const auto& fn : (*registry)->List()) scheduler->Prepare(fn);  // Node's stem cells, code images
  // Every finished invocation is priced, recorded in the ledger (safe from kill -9) and counted
  // before its response goes out. Declared before the APIs: the ledger outlives the Event
  // invocations they wait for.
  std::unique_ptr<billing::Ledger> ledger;
  if (options.ledger) {
    auto opened = billing::Ledger::Open(options.state_dir + "/ledger.db");
    if (!opened) Die(opened.error().ToString());
    ledger = std::move(opened.value());
  }
  metrics::LatencyStats stats;
  metrics::InvocationRecorder recorder(options.pricing, ledger.get(), &stats);
  // Event invocations: accepted into STATE_DIR/events/log before their 202, run by the queue's
  // workers; what a previous process accepted and did not finish runs again now. A state dir
  // that cannot take the log (read-only, full) refuses Event invocations, nothing else.
  std::unique_ptr<events::EventLog> event_log;
  Error event_log_error;
  {
    events::EventLogOptions eo;
    eo.sync = options.event_sync;
    auto opened = events::EventLog::Open(options.state_dir + "/events", eo);
    if (opened) {
      event_log = std::move(opened.value());
    } else {
      event_log_error = opened.error();
      log::Error(opened.error().ToString() + ": Event invocations are refused until a restart");
    }
  }
  events::InvokeConfigStore invoke_configs(options.state_dir + "/events/config");
  if (auto s = invoke_configs.Load(); !s) log::Warning(s.error().ToString());
  auto event_queue = std::make_unique<events::EventQueue>(options.events, registry->get(), scheduler.get(),
                                                          &recorder, event_log.get(), &invoke_configs,
                                                          event_log_error);
  if (ledger)  // each event's steps are counted in the bill (the ledger's log: safe from kill -9)
    event_queue->SetStepRecorder([&ledger](const std::string& id, const std::string& function,
                                           const char* kind, uint32_t attempt) {
      billing::EventRecord r{id, function, kind, attempt,
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count()};
      if (auto s = ledger->RecordEvent(r); !s) log::Warning(s.error().ToString());
    });
  event_queue->Start();
  api::LambdaApi lambda(registry->get(), scheduler.get(), &recorder, event_queue.get(), &invoke_configs);
  api::EventsApi events_api(registry->get(), event_queue.get(), &invoke_configs);
  api::ReportingApi reporting(&stats, ledger.get(), [&] {
    metrics::NodeGauges g;
    auto c = scheduler->Counts();
    g.instances_idle = c.idle;
    g.instances_busy = c.busy;
    g.memory_reserved_mb = c.memory_mb;
    g.memory_budget_mb = scheduler->options().memory_budget_mb;
    for (const auto& z : (*launcher)->Zygotes()) g.zygotes.push_back({z.runtime, z.boot_ms, z.forks});
    for (const auto& [name, e] : event_queue->Stats())
      g.async_events.push_back({name, e.received, e.succeeded, e.retried, e.throttled, e.depth,
                                e.in_flight, e.oldest_age_ms, e.dropped, e.refused});
    return g;
  }, [&] { return (*launcher)->SnapshotReport(); }, [&] { return events_api.QueueStats(); });
  api::AdminApi admin(registry->get(), scheduler.get(), launcher->get());

  // The socket's directory: systemd makes /run/forklet (RuntimeDirectory=); by hand, we do.
  fs::create_directories(fs::path(options.socket_path).parent_path(), ec);
  // Signature V4 on the TCP API when access keys are configured; the Unix socket's file mode
  // (0660, root's) is its access control.
  std::unique_ptr<api::SigV4Verifier> verifier;
  if (credentials) {
    verifier = std::make_unique<api::SigV4Verifier>(credentials.get(), api::SigV4Options{options.regions});
    log::Notice("the TCP API takes requests signed with Signature V4 by " + std::to_string(credentials->size()) +
                " access keys of " + options.credentials_path);
  } else if (options.insecure_no_auth) {
    log::Warning("--insecure-no-auth: the TCP API on " + options.listen +
                 " takes unsigned requests, and everyone who reaches it is the operator of every account "
                 "(local development only; give --credentials otherwise)");
  }
  api::HttpServerOptions ho;
  ho.listen = options.listen;
  ho.unix_socket = options.socket_path;
  ho.header_timeout = options.http_header_timeout;
  ho.body_timeout = options.http_body_timeout;
  ho.idle_timeout = options.http_idle_timeout;
  ho.max_connections = options.http_max_connections;
  ho.max_large_bodies = options.max_concurrent_uploads;
  // Code uploads (CreateFunction, UpdateFunctionCode) of 1 MB or more are spooled to disk as they
  // arrive; a killed daemon's are removed here.
  ho.spool_dir = options.state_dir + "/uploads";
  fs::remove_all(ho.spool_dir, ec);
  fs::create_directories(ho.spool_dir, ec);
  chmod(ho.spool_dir.c_str(), 0700);
  ho.spool = [](std::string_view method, std::string_view target) {
    target = target.substr(0, target.find('?'));
    while (target.size() > 1 && target.back() == '/') target.remove_suffix(1);
    constexpr std::string_view kFunctions = "/2015-03-31/functions";
    if (method == "POST") return target == kFunctions;
    return method == "PUT" && target.rfind(kFunctions, 0) == 0 && target.size() > 5 &&
           target.substr(target.size() - 5) == "/code";
  };
  ho.tls_cert = options.tls_cert;
  ho.tls_key = options.tls_key;
  auto server = api::HttpServer::Start(ho, [&](api::HttpRequest& r) {
    // Who asks: the tenant of the signing key; the operator over the Unix socket, with an
    // operator key, or on a TCP API without --credentials (everyone there is trusted).
    if (verifier && !r.local) {
      api::AccessKey key;
      if (auto refused = verifier->Verify(r, std::chrono::system_clock::now(), &key))
        return api::AuthFailureResponse(*refused);
      if (!key.is_operator) r.account = key.account_id;
    }
    if (api::ReportingApi::Serves(r.path)) return reporting.Handle(r);
    if (api::EventsApi::Serves(r.path)) return events_api.Handle(r);
    return r.path.rfind("/forklet/", 0) == 0 ? admin.Handle(r) : lambda.Handle(r);
  });
  if (!server) Die(server.error().ToString());
  // Ready means answering: one request through the Unix socket before systemd hears READY=1.
  if (auto h = api::HttpCall("unix:" + options.socket_path, "GET", "/forklet/v1/health");
      !h || h->status != 200)
    Die("the API does not answer on " + options.socket_path +
        (h ? ": HTTP " + std::to_string(h->status) : ": " + h.error().ToString()));
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  log::Notice(std::string("ready on ") + ((*server)->tls() ? "https://" : "http://") + host + ":" + std::to_string((*server)->tcp_port()) +
              " and unix:" + options.socket_path + " (state " + options.state_dir + ", config " +
              (options.config_path.empty() ? "none" : options.config_path) + ", cgroups " +
              (*launcher)->cgroups().version() + " " + (*launcher)->cgroups().root_description() +
              ", " + std::to_string((*registry)->List().size()) + " functions)");
  notifier.SetStatusSource([&] { return StatusLine(scheduler.get(), launcher->get()); });
  notifier.Ready();

  int signo;
  while ((signo = daemon::WaitForSignal()) == SIGHUP) {
    notifier.Reloading();
    if (credentials) {
      if (auto s = credentials->Reload(); s)
        log::Notice("credentials: " + std::to_string(credentials->size()) + " access keys from " + credentials->path());
      else
        log::Error(s.error().ToString() + " (the access keys in force stay)");
    }
    if ((*server)->tls()) {
      if (auto s = (*server)->ReloadTls(); s)
        log::Notice("TLS: new connections use the certificate " + options.tls_cert);
      else
        log::Error(s.error().ToString() + " (the certificate in force stays)");
    }
    if (daemon::Reload(argc, argv, &options, scheduler.get())) {
      // Prices change live; the billing granularity and bill-init are the scheduler's and wait
      // for a restart (a bill must not mix roundings silently).
      daemon::Options fresh;
      std::string why;
      bool help_asked = false;
      if (daemon::ParseOptions(argc, argv, &fresh, &why, &help_asked)) {
        billing::PricingConfig p = options.pricing;
        p.request_price_pd = fresh.pricing.request_price_pd;
        p.gb_second_price_pd = fresh.pricing.gb_second_price_pd;
        recorder.SetPricing(p);
        options.pricing = p;
        if (fresh.pricing.granularity_ms != p.granularity_ms || fresh.pricing.bill_init != p.bill_init)
          log::Warning("reload: billing-granularity-ms and bill-init apply at the next restart");
      }
    }
    notifier.Ready();
  }

  // Drain: no new invocations (503), those in flight finish within the grace period (each one
  // committed to the ledger before its response), and only then the API closes and every
  // instance is torn down.
  scheduler->BeginDrain();
  event_queue->StopDispatch();  // queued events stay in the log and run after the restart
  log::Notice(std::string(strsignal(signo)) + ": draining " +
              std::to_string(scheduler->InFlight()) + " invocations in flight (grace " +
              std::to_string(options.drain_grace.count()) + " s)");
  notifier.Stopping("draining");
  if (uint32_t left = scheduler->WaitForInFlight(options.drain_grace); left > 0) {
    log::Warning("drain: " + std::to_string(left) +
                 " invocations still running after the grace period; stopping their instances");
    // Killing ends a running invocation at once; one still starting runs after it, hence rounds.
    for (int round = 0; round < 10 && scheduler->InFlight() > 0; ++round) {
      scheduler->KillRunning();
      scheduler->WaitForInFlight(std::chrono::seconds(1));
    }
  }
  (*server)->Stop();
  event_queue->WaitIdle();  // Event invocations use the scheduler until their very end
  if (uint64_t kept = event_queue->Depth(); kept > 0)
    log::Notice("events: " + std::to_string(kept) + " queued events kept in the event log for the next start");
  event_queue.reset();
  // The ledger closes last, at the end of main (after the Lambda API's Event invocations).
  notifier.SetStatusSource(nullptr);
  notifier.Status("tearing down instances and zygotes");
  scheduler.reset();
  launcher->reset();
  log::Notice("stopped");
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const StartFailure& failure) {
    log::Error(failure.message);
    return 1;
  }
}
