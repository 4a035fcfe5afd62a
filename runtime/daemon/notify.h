// systemd's notify protocol (Type=notify) through libsystemd's sd_notify: READY, STATUS,
// RELOADING, STOPPING and the watchdog. Without NOTIFY_SOCKET (not started by systemd) every call
// is a no-op.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace forklet::daemon {

class ServiceNotifier {
 public:
  // Starts the notifier's thread: WATCHDOG=1 every half WatchdogSec= (when the unit sets it) and
  // a fresh STATUS= line when the status source's text changes.
  ServiceNotifier();
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // What STATUS= says from now on, asked for on the notifier's thread. The watchdog is only
  // pinged after the source answered, so a source that takes the daemon's locks makes a wedged
  // daemon miss its pings (and systemd restart it). nullptr: no more live status.
  void SetStatusSource(std::function<std::string()> source);

  void Ready();                           // READY=1 and the current status
  void Status(const std::string& text);   // one STATUS= line now
  void Reloading();                       // RELOADING=1 (Ready() again when done)
  void Stopping(const std::string& text); // STOPPING=1 and a status

  bool watchdog_enabled() const { return watchdog_.count() > 0; }

 private:
  void Loop();
  void Send(const std::string& state);

  std::chrono::microseconds watchdog_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::function<std::string()> source_;
  std::string last_status_;
  std::thread thread_;
};

}  // namespace forklet::daemon
