// A progress bar on stderr: redrawn in place on a terminal, one final line otherwise.
#pragma once

#include <chrono>
#include <string>

namespace forklet::bench {

class Progress {
 public:
  Progress(std::string label, size_t total);
  void Update(size_t done);  // cheap: redraws at most every 50 ms
  void Done();               // the final state and a newline

 private:
  void Draw(size_t done);
  std::string label_;
  size_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool finished_ = false;
};

}  // namespace forklet::bench
