// The HTTP floor: nginx answering two bytes on loopback, timed by forklet-bench's own client, so
// that the warm path's latency and tail have the cost of any one HTTP answer next to them.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "sandbox/error.h"

namespace forklet::bench {

// An nginx of its own (one worker, a private prefix and port, no access log), stopped and its
// files removed when this is destroyed.
class HttpFloorServer {
 public:
  // Fails with a clear message when nginx is not installed (tools/setup.sh installs nginx-light).
  static Result<std::unique_ptr<HttpFloorServer>> Start();
  ~HttpFloorServer();
  HttpFloorServer(const HttpFloorServer&) = delete;
  HttpFloorServer& operator=(const HttpFloorServer&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  static const char* Path() { return "/floor"; }              // answers 200 "{}"

 private:
  HttpFloorServer() = default;
  pid_t pid_ = -1;
  std::string dir_, endpoint_;
};

// n samples (after warmup untimed ones) of GET Path() over one keep-alive connection, in ms.
Result<std::vector<double>> MeasureHttpFloor(const std::string& endpoint, int warmup, int samples);

}  // namespace forklet::bench
