// forkletd's log: one line per event on stderr, each opening with a syslog priority ("<6>forkletd:
#include "runtime/log/log.h"

#include <unistd.h>

#include <cerrno>
#include <string>

namespace forklet::log {

void Write(Priority priority, std::string_view message) {
  std::string line = "<" + std::to_string(static_cast<int>(priority)) + ">forkletd: ";
  line.reserve(line.size() + message.size() + 1);
  for (char c : message) {
    if (c == '\n') line += "\\n";
    else if (c == '\r') line += "\\r";
    else line += c;
  }
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: nothing better to do
    done += static_cast<size_t>(n);
  }
}

}  // namespace forklet::log
