// systemd's notify protocol (Type=notify) through libsystemd's sd_notify: READY, STATUS,
#include "runtime/daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "runtime/log/log.h"

namespace forklet::daemon {
namespace {

// STATUS= ends at the line's end: one line, whatever the source says.
std::string OneLine(std::string text) {
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0)
    watchdog_ = std::chrono::microseconds(usec);
  if (getenv("NOTIFY_SOCKET") == nullptr) return;  // not run by systemd: nothing to say
  thread_ = std::thread([this] { Loop(); });
}

ServiceNotifier::~ServiceNotifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServiceNotifier::Send(const std::string& state) {
  int rc = sd_notify(/*unset_environment=*/0, state.c_str());
  if (rc < 0) {
    static bool told = false;  // once: a broken notify socket would flood the log
    if (!told) log::Warning("sd_notify failed: " + std::string(strerror(-rc)));
    told = true;
  }
}

void ServiceNotifier::SetStatusSource(std::function<std::string()> source) {
  std::lock_guard lock(mu_);
  source_ = std::move(source);
}

void ServiceNotifier::Ready() {
  std::lock_guard lock(mu_);
  std::string state = "READY=1";
  if (source_) {
    last_status_ = OneLine(source_());
    state += "\nSTATUS=" + last_status_;
  }
  Send(state);
}

void ServiceNotifier::Status(const std::string& text) {
  std::lock_guard lock(mu_);
  last_status_ = OneLine(text);
  Send("STATUS=" + last_status_);
}

void ServiceNotifier::Reloading() {
  std::lock_guard lock(mu_);
  Send("RELOADING=1\nSTATUS=reloading the configuration");
}

void ServiceNotifier::Stopping(const std::string& text) {
  std::lock_guard lock(mu_);
  last_status_ = OneLine(text);
  Send("STOPPING=1\nSTATUS=" + last_status_);
}

void ServiceNotifier::Loop() {
  // Half the watchdog period, as sd_watchdog_enabled(3) advises; else the status's refresh rate.
  const auto period = watchdog_enabled() ? watchdog_ / 2 : std::chrono::microseconds(2'000'000);
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
    std::string state;
    if (source_) {
      std::string status = OneLine(source_());
      if (status != last_status_) state = "STATUS=" + status;
      last_status_ = std::move(status);
    }
    if (watchdog_enabled()) state += std::string(state.empty() ? "" : "\n") + "WATCHDOG=1";
    if (!state.empty()) Send(state);
  }
}

}  // namespace forklet::daemon
