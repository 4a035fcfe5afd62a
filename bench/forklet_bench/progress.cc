// A progress bar on stderr: redrawn in place on a terminal, one final line otherwise.
#include "bench/forklet_bench/progress.h"

#include <unistd.h>

#include <cstdio>

namespace forklet::bench {

Progress::Progress(std::string label, size_t total)
    : label_(std::move(label)), total_(total ? total : 1), tty_(isatty(STDERR_FILENO)) {
  if (tty_) Draw(0);
}

void Progress::Update(size_t done) {
  if (!tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(50) && done < total_) return;
  last_draw_ = now;
  Draw(done);
}

void Progress::Draw(size_t done) {
  constexpr int kWidth = 30;
  int filled = static_cast<int>(kWidth * std::min(done, total_) / total_);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  fprintf(stderr, "%s  %-28s [%s] %zu/%zu", tty_ ? "\r" : "", label_.c_str(), bar, done, total_);
  fflush(stderr);
}

void Progress::Done() {
  if (finished_) return;
  finished_ = true;
  Draw(total_);
  fputc('\n', stderr);
}

}  // namespace forklet::bench
