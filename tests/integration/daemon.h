// Test harness: a real forkletd on a free loopback port with its own state dir, and real clients
// (the aws CLI, the forklet CLI) run as subprocesses.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace forklet::testing {

struct CmdResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] an absolute path) with extra environment, waits up to timeout_s.
CmdResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {}, int timeout_s = 120);

class Daemon {
 public:
  // Starts forkletd and waits for its "ready" line. An empty state_dir makes a fresh temp dir
  // (removed by the destructor); a given one is kept.
  static std::unique_ptr<Daemon> Start(const std::vector<std::string>& extra_args = {},
                                       const std::string& state_dir = "");
  ~Daemon();  // SIGTERM and wait; SIGKILL after 15 s

  void Kill9();  // kill -9: no cleanup by the daemon itself
  bool Alive();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string unix_endpoint() const { return "unix:" + state_dir_ + "/forkletd.sock"; }
  const std::string& state_dir() const { return state_dir_; }
  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  // Reads what it wrote to stderr since (without blocking) into log() and returns log(). Call it
  // now and then in long tests: a full pipe would block the daemon's next log line.
  const std::string& ReadLog();

  // `aws lambda ARGS --endpoint-url ...` with throwaway credentials and no retries.
  CmdResult Aws(const std::vector<std::string>& args, int timeout_s = 120);
  // The forklet CLI against this daemon's Unix socket.
  CmdResult Cli(const std::vector<std::string>& args);

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int stderr_fd_ = -1;
  std::string state_dir_;
  bool own_state_dir_ = false;
  std::string log_;
};

// A tmpfs of a given size mounted at /tmp/forklet-test-state-NAME-PID (a state dir with a small
// disk), unmounted and removed whatever happens.
class SmallDisk {
 public:
  SmallDisk(const std::string& name, const std::string& size);
  ~SmallDisk();
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// tests/functions/NAME zipped into a temp file; returns its path.
std::string ZipFunction(const std::string& name);
// Any function directory (an absolute path) zipped into a temp file; returns its path.
std::string ZipDirectory(const std::string& dir);
// A zip of one file with the given name and content (for hostile archives), via Python's zipfile.
std::string ZipWithEntry(const std::string& entry_name, const std::string& content);

// Deploys tests/functions/NAME as function FN with the aws CLI; returns the CLI's result.
CmdResult Deploy(Daemon& d, const std::string& fn, const std::string& name,
                 const std::vector<std::string>& extra = {});

// Deploys the function directory DIR (an absolute path, e.g. one of tests/attacks/) as FN.
CmdResult DeployDir(Daemon& d, const std::string& fn, const std::string& dir,
                    const std::vector<std::string>& extra = {});
// The same with another runtime and handler than python3.11 and app.handler.
CmdResult DeployDir(Daemon& d, const std::string& fn, const std::string& dir,
                    const std::string& runtime, const std::string& handler,
                    const std::vector<std::string>& extra = {});

// Invokes FN with the aws CLI; the function's response body goes to *body, the CLI's JSON
// output (StatusCode, FunctionError, LogResult, ...) is returned in the CmdResult.
CmdResult Invoke(Daemon& d, const std::string& fn, const std::string& payload, std::string* body,
                 const std::vector<std::string>& extra = {});

// `aws lambda invoke --log-type Tail`: the CLI's JSON output (StatusCode, FunctionError, ...), the
// body in *body and the decoded log tail in *log. A failing CLI fails the test.
nlohmann::json InvokeWithLog(Daemon& d, const std::string& fn, const std::string& payload,
                             std::string* body, std::string* log = nullptr);
// GET /forklet/v1/health (null when it fails).
nlohmann::json Health(Daemon& d);
// From a log tail: the start kind of its REPORT line, the request id of its START line.
std::string StartKindIn(const std::string& log);
std::string RequestIdIn(const std::string& log);
// "Key:  value" lines (as /proc/self/status) as a map.
std::map<std::string, std::string> StatusFields(const std::string& text);

// Base64 decoding for LogResult.
std::string Base64Decode(const std::string& s);

// What the daemons this test process started left on the machine: their cgroups (by state dir),
// forklet processes started from this build tree, and mounts of test state dirs.
std::vector<std::string> Leftovers();
// The cgroup root names (forklet.<tag>) of every daemon this test process started.
std::set<std::string> StartedCgroupRoots();
// A state dir whose daemon was started outside Daemon::Start (its cgroups count as ours).
void RememberStateDir(const std::string& state_dir);

}  // namespace forklet::testing
