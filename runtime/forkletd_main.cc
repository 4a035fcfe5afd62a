// forkletd: the node daemon. Opens the state, starts the zygotes and serves the API until
// SIGTERM or SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "runtime/api/admin_api.h"
#include "runtime/api/http_server.h"
#include "runtime/api/lambda_api.h"
#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/daemon/options.h"
#include "runtime/registry/registry.h"

namespace fs = std::filesystem;
using namespace forklet;

namespace {

int g_signal_pipe = -1;  // written by the signal handler, read by main

void OnSignal(int) {
  static const char c = 1;
  (void)!write(g_signal_pipe, &c, 1);  // async-signal-safe: just wake main
}

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "forkletd: %s\n", message.c_str());
  exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  daemon::Options options;
  std::string message;
  bool help = false;
  if (!daemon::ParseOptions(argc, argv, &options, &message, &help)) {
    if (help) {
      fputs(message.c_str(), stdout);
      return 0;
    }
    Die(message + "\n" + daemon::Usage());
  }
  if (geteuid() != 0) Die("must run as root (it creates namespaces, mounts and cgroups)");
  std::error_code ec;
  fs::create_directories(options.state_dir, ec);
  if (ec) Die("--state-dir " + options.state_dir + ": " + ec.message());
  options.state_dir = fs::canonical(options.state_dir).string();
  chmod(options.state_dir.c_str(), 0711);
  daemon::FinishOptions(&options);
  if (!fs::exists(options.launcher.zygote_library))
    Die("zygote library not found: " + options.launcher.zygote_library + " (use --zygote-lib)");
  if (!fs::exists(options.launcher.runners_dir + "/python/forklet_zygote.py"))
    Die("python runner not found in " + options.launcher.runners_dir + " (use --runners-dir)");

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) Die("pipe failed");
  g_signal_pipe = pipefd[1];
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  auto registry = registry::Registry::Open(options.state_dir, options.archive);
  if (!registry) Die("state dir: " + registry.error().ToString());
  auto launcher = core::Launcher::Create(options.launcher);
  if (!launcher) Die(launcher.error().ToString());
  if (options.warmup) {
    if (auto s = (*launcher)->WarmUp(); !s) Die("python zygote: " + s.error().ToString());
  }
  auto scheduler = std::make_unique<core::Scheduler>(options.scheduler, launcher->get());
  api::LambdaApi lambda(registry->get(), scheduler.get(), /*observer=*/nullptr);
  api::AdminApi admin(registry->get(), scheduler.get(), launcher->get());

  api::HttpServerOptions ho;
  ho.listen = options.listen;
  ho.unix_socket = options.socket_path;
  auto server = api::HttpServer::Start(ho, [&](const api::HttpRequest& r) {
    return r.path.rfind("/forklet/", 0) == 0 ? admin.Handle(r) : lambda.Handle(r);
  });
  if (!server) Die(server.error().ToString());
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  fprintf(stderr, "forkletd: ready on http://%s:%d and unix:%s (state %s, cgroups %s %s, %zu functions)\n",
          host.c_str(), (*server)->tcp_port(), options.socket_path.c_str(), options.state_dir.c_str(),
          (*launcher)->cgroups().version(), (*launcher)->cgroups().root_description().c_str(),
          (*registry)->List().size());

  char c;
  while (read(pipefd[0], &c, 1) < 0 && errno == EINTR) {
  }
  fprintf(stderr, "forkletd: stopping\n");
  (*server)->Stop();
  scheduler.reset();
  launcher->reset();
  return 0;
}
