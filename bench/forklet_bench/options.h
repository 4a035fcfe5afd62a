// forklet-bench's command line.
#pragma once

#include <string>
#include <vector>

namespace forklet::bench {

struct Options {
  std::string endpoint;                  // a running daemon; empty: start one
  std::string forkletd;                  // default: next to forklet-bench
  std::vector<std::string> daemon_args;  // extra forkletd flags for the daemon it starts
  int warmup = 20;                       // untimed requests before each start kind (cold: 2)
  int cold = 50, zygote = 500, warm = 10000;
  int pre_booted = 100;                  // zygote samples of a pre-booted runtime (each waits for
                                         // its stem cell to boot)
  int baseline = 50;                     // process runs of each baseline
  int floor_iterations = 2000;           // iterations inside one clone-floor run
  std::vector<int> clients = {1, 2, 4, 8};
  double sweep_seconds = 2;
  // Every benchmark function's memory size. 1769 MB: one full core of CPU quota (Lambda's ratio),
  // so that back-to-back warm invocations measure forklet, not a small function's CPU share.
  int memory_mb = 1769;
  bool baselines = true, sweep = true, memory = true;
  std::string json, csv, plot, table;    // output files; empty: none
};

// Returns false with a message (usage on --help, *help set) when the program should stop.
bool ParseOptions(int argc, char** argv, Options* o, std::string* message, bool* help);

// A file installed next to the running binary (build tree: bin/, lib/, share/).
std::string NextToBinary(const std::string& relative);

}  // namespace forklet::bench
