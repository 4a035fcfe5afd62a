// forkletd's log: one line per event on stderr, each opening with a syslog priority ("<6>forkletd:
// ..."), so that journald stores it as a structured entry with that priority.
#pragma once

#include <string_view>

namespace forklet::log {

// The syslog levels forkletd uses (journalctl -p takes the same numbers).
enum class Priority { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6 };

// Writes "<N>forkletd: MESSAGE\n" with one write(2), so lines of concurrent threads never mix.
// Line breaks inside the message are escaped ("\n"): one event stays one journal entry.
void Write(Priority priority, std::string_view message);

inline void Error(std::string_view message) { Write(Priority::kError, message); }
inline void Warning(std::string_view message) { Write(Priority::kWarning, message); }
inline void Notice(std::string_view message) { Write(Priority::kNotice, message); }
inline void Info(std::string_view message) { Write(Priority::kInfo, message); }

}  // namespace forklet::log
