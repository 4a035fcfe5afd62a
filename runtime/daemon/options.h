// forkletd's configuration: built-in defaults, then the configuration file, then command-line
// flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/billing/pricing.h"
#include "runtime/core/launcher.h"
#include "runtime/core/scheduler.h"
#include "runtime/events/event_queue.h"
#include "runtime/registry/code_archive.h"

namespace forklet::daemon {

struct Options {
  std::string listen = "127.0.0.1:9000";
  std::string state_dir = "/var/lib/forklet";
  std::string socket_path;  // default: <state_dir>/forkletd.sock
  std::string credentials_path;   // SigV4 access keys for the TCP API; empty: unsigned requests
  std::set<std::string> regions;  // a signature's region must be one of these; empty: any
  bool insecure_no_auth = false;  // unsigned TCP requests (everyone is the operator), even off loopback
  std::string tls_cert;  // PEM certificate (chain) of the TCP API; empty: plain HTTP
  std::string tls_key;   // its PEM private key
  bool warmup = true;
  core::SchedulerOptions scheduler;
  core::LauncherOptions launcher;  // state_dir and cgroup_tag are derived in Finish()
  registry::ArchiveLimits archive;
  std::string config_path;  // the configuration file read; empty when none
  std::chrono::seconds drain_grace{30};  // SIGTERM: how long in-flight invocations may finish
  nlohmann::json prices;    // the file's "prices", for the billing ledger
  billing::PricingConfig pricing;  // Lambda 2017 by default; the file's "prices", then flags
  bool ledger = true;              // --no-ledger: nothing is billed (to measure its cost)
  // The API's transport (api::HttpServerOptions): slow and idle clients are bounded.
  std::chrono::seconds http_header_timeout{10};
  std::chrono::seconds http_body_timeout{120};
  std::chrono::seconds http_idle_timeout{60};
  uint64_t http_max_connections = 512;
  uint64_t max_concurrent_uploads = 4;  // request bodies of 1 MB or more held at once
  events::EventQueueOptions events;  // Event invocations: workers, retry backoff
  bool event_sync = false;           // --event-sync: fdatasync each accepted event (group commit)
};

// Reads the configuration file (--config FILE, else the default path when it exists) and parses
// argv over the defaults and the file: flags win. Returns false with a message on bad input (or
// --help, with the usage as the message and *help set).
bool ParseOptions(int argc, char** argv, Options* out, std::string* message, bool* help);

// Fills what follows from the rest (socket path, cgroup tag) once the state dir is canonical.
void FinishOptions(Options* options);

const char* Usage();

}  // namespace forklet::daemon
