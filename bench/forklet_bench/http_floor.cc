// The HTTP floor: nginx answering two bytes on loopback, timed by forklet-bench's own client.
#include "bench/forklet_bench/http_floor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/forklet_bench/baselines.h"
#include "bench/forklet_bench/http_client.h"
#include "bench/forklet_bench/progress.h"

namespace forklet::bench {
namespace fs = std::filesystem;
namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";

// A loopback port nobody listens on right now (the kernel's pick; nginx binds it next).
Result<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    close(fd);
    return SysError("bind a loopback port", e);
  }
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

Result<std::unique_ptr<HttpFloorServer>> HttpFloorServer::Start() {
  if (access(kNginx, X_OK) != 0)
    return MakeError("http floor", std::string(kNginx) + " is not installed (tools/setup.sh installs nginx-light)");
  std::unique_ptr<HttpFloorServer> s(new HttpFloorServer());
  char tmpl[] = "/tmp/forklet-bench-nginx-XXXXXX";
  if (!mkdtemp(tmpl)) return SysError("mkdtemp");
  s->dir_ = tmpl;
  auto port = FreePort();
  if (!port) return port.error();
  const std::string conf = s->dir_ + "/nginx.conf";
  {
    std::ofstream f(conf);
    // One process (no master, no user switch), everything under the private prefix.
    f << "daemon off;\nmaster_process off;\n"
      << "pid " << s->dir_ << "/nginx.pid;\nerror_log " << s->dir_ << "/error.log warn;\n"
      << "events { worker_connections 256; }\n"
      << "http {\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 600s;\n"
      << "  client_body_temp_path " << s->dir_ << "/body;\n  proxy_temp_path " << s->dir_ << "/proxy;\n"
      << "  fastcgi_temp_path " << s->dir_ << "/fastcgi;\n  uwsgi_temp_path " << s->dir_ << "/uwsgi;\n"
      << "  scgi_temp_path " << s->dir_ << "/scgi;\n"
      << "  server {\n    listen 127.0.0.1:" << *port << ";\n"
      << "    location " << Path() << " { default_type application/json; return 200 \"{}\"; }\n  }\n}\n";
    if (!f) return SysError("write " + conf);
  }
  auto pid = SpawnQuiet({kNginx, "-p", s->dir_, "-c", conf, "-e", s->dir_ + "/error.log"});
  if (!pid) return pid.error();
  s->pid_ = *pid;
  s->endpoint_ = "http://127.0.0.1:" + std::to_string(*port);
  // Ready when it answers.
  for (int i = 0; i < 200; ++i) {
    HttpConnection conn(s->endpoint_);
    if (auto r = conn.Call("GET", Path()); r && r->status == 200) return s;
    int status = 0;
    if (waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      std::ifstream log(s->dir_ + "/error.log");
      std::string text((std::istreambuf_iterator<char>(log)), {});
      return MakeError("http floor", "nginx exited at start: " + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return MakeError("http floor", "nginx did not answer on " + s->endpoint_ + " within 2 s");
}

HttpFloorServer::~HttpFloorServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {  // 2 s to stop, then SIGKILL
      gone = waitpid(pid_, &status, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

Result<std::vector<double>> MeasureHttpFloor(const std::string& endpoint, int warmup, int samples) {
  using Clock = std::chrono::steady_clock;
  HttpConnection conn(endpoint);
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(samples));
  Progress progress("http floor (nginx)", static_cast<size_t>(samples));
  for (int i = 0; i < warmup + samples; ++i) {
    auto t0 = Clock::now();
    auto r = conn.Call("GET", HttpFloorServer::Path());
    auto t1 = Clock::now();
    if (!r) return r.error();
    if (r->status != 200) return MakeError("http floor", "HTTP " + std::to_string(r->status));
    if (i < warmup) continue;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    progress.Update(ms.size());
  }
  progress.Done();
  return ms;
}

}  // namespace forklet::bench
