// The AWS Lambda Runtime API (2018-06-01) of one instance, served to its bootstrap on
// 127.0.0.1:9001 inside the instance's own net namespace. Single-threaded: one poll loop over
// the listening socket, the bootstrap's connections, the daemon's channel and SIGCHLD.
//
//   GET  /2018-06-01/runtime/invocation/next            blocks until the daemon's INVOKE; the
//                                                       first one ends init (READY)
//   POST /2018-06-01/runtime/invocation/{id}/response   RESULT ok, 202
//   POST /2018-06-01/runtime/invocation/{id}/error      RESULT error, 202
//   POST /2018-06-01/runtime/init/error                 INIT_ERROR, 202
//
// The server is the instance's pid 1: when the bootstrap exits, the instance ends with it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "lang-runners/zygote/runner_channel.h"

namespace forklet::runner {

constexpr const char* kRuntimeApiAddress = "127.0.0.1:9001";

class RuntimeApiServer {
 public:
  // Listens on kRuntimeApiAddress and watches SIGCHLD (blocked from here on: the bootstrap gets
  // an empty mask). nullptr with *error set when either fails.
  static std::unique_ptr<RuntimeApiServer> Create(const Init& init, std::string* error);
  ~RuntimeApiServer();

  // Serves until the instance ends: the daemon closed the channel, or the bootstrap exited (after
  // its init error or result has been sent). init_start_us: when init began (MonotonicMicros).
  // Returns the runner's exit status.
  int Run(pid_t bootstrap, uint64_t init_start_us);

  struct Connection;

 private:
  enum class Phase {
    kInit,        // the bootstrap starts; its first /next ends init
    kIdle,        // waiting for the daemon's next INVOKE
    kInvoking,    // an event is with the bootstrap; its /response or /error is due
    kInitFailed,  // it posted /init/error: the daemon ends the instance
  };
  RuntimeApiServer(const Init& init, int listen_fd, int signal_fd);

  void Accept();
  void OnReadable(Connection& c);
  void OnWritable(Connection& c);
  void Parse(Connection& c);
  void Route(Connection& c);
  void ServeNext(Connection& c);
  void ServeResult(Connection& c, const std::string& request_id, bool ok);
  void ServeInitError(Connection& c);
  void DeliverInvoke();  // the queued INVOKE to the waiting /next, when both are there
  bool ReadChannel();    // false: the daemon has gone
  bool Reap();           // false: the bootstrap has exited
  int BootstrapExited();  // reports an exit during init or an invocation; the exit status
  void Reply(Connection& c, int status, const std::string& body, const std::string& headers = "");
  void ReplyError(Connection& c, int status, const std::string& type, const std::string& message);
  void Close(int fd);

  const Init& init_;
  int listen_fd_;
  int signal_fd_;
  pid_t bootstrap_ = -1;
  int bootstrap_status_ = 0;
  Phase phase_ = Phase::kInit;
  uint64_t init_start_us_ = 0;
  std::map<int, std::unique_ptr<Connection>> conns_;
  int waiting_next_ = -1;           // the connection whose /next waits for an event
  std::optional<Invoke> queued_;    // an INVOKE that came before the bootstrap's /next
  std::optional<Invoke> current_;   // the invocation the bootstrap is running
  uint64_t current_start_us_ = 0;
  bool done_ = false;
  int exit_status_ = 0;
};

}  // namespace forklet::runner
