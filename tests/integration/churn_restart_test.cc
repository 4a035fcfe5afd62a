// The race-and-restart harness: create/update/configure/delete churn against steady invocations,
// with SIGTERM and kill -9 restarts between rounds. After each round: no invocation of a valid
// function failed, every acknowledged change is there, nothing unacknowledged is, and (at the
// end) nothing of the daemons is left on the machine. Bounded: four rounds of about 8 s.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kVersions = 3;
const std::vector<std::string> kChurned = {"churn-a", "churn-b", "churn-c"};

std::string ZipBase64(int version) {
  auto r = Run({"/usr/bin/python3", "-c",
                "import io, sys, zipfile, base64\n"
                "b = io.BytesIO()\n"
                "with zipfile.ZipFile(b, 'w') as z:\n"
                "    z.writestr('app.py', 'def handler(e, c):\\n    return {\"version\": ' + sys.argv[1] + '}\\n')\n"
                "sys.stdout.write(base64.b64encode(b.getvalue()).decode())\n",
                std::to_string(version)});
  if (r.exit_code != 0) throw std::runtime_error("zip: " + r.err);
  return r.out;
}

// What a function is, as far as the API said so.
struct State {
  bool exists = false;
  int version = 0;
  int timeout = 3;
  int reserved = -1;  // none
  bool operator==(const State& o) const {
    return exists == o.exists &&
           (!exists || (version == o.version && timeout == o.timeout && reserved == o.reserved));
  }
  std::string ToString() const {
    if (!exists) return "absent";
    return "v" + std::to_string(version) + " timeout " + std::to_string(timeout) + " reserved " +
           std::to_string(reserved);
  }
};

class ChurnRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = "/tmp/forklet-churn-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    state_ = t;
    for (int v = 0; v < kVersions; ++v) zips_.push_back(ZipBase64(v));
    daemon_ = Daemon::Start({}, state_);
  }
  void TearDown() override {
    daemon_.reset();
    std::error_code ec;
    fs::remove_all(state_, ec);
  }

  api::HttpResponse Call(const std::string& method, const std::string& target,
                         const std::string& body = {}) {
    auto r = api::HttpCall(endpoint_, method, target, body);
    if (!r) return api::HttpResponse{599, {}, r.error().ToString()};
    return *r;
  }
  void Failure(const std::string& what) {
    std::lock_guard lock(mu_);
    failures_.push_back(what);
  }

  // One change to a churned function, picked at random; updates *model for what was
  // acknowledged. false: the daemon did not answer (it is going away): the change may or may
  // not have happened, and *maybe holds the state it would have made.
  bool Churn(const std::string& name, std::mt19937& rng, State* model, State* maybe) {
    State next = *model;
    api::HttpResponse r;
    const std::string fn = "/2015-03-31/functions/" + name;
    int pick = static_cast<int>(rng() % 10);
    if (!model->exists) {
      next = State{true, static_cast<int>(rng() % kVersions), 3 + static_cast<int>(rng() % 5), -1};
      r = Call("POST", "/2015-03-31/functions",
               json{{"FunctionName", name}, {"Runtime", "python3.11"}, {"Handler", "app.handler"},
                    {"Role", "r"}, {"Timeout", next.timeout},
                    {"Code", {{"ZipFile", zips_[next.version]}}}}.dump());
    } else if (pick < 4) {
      next.version = static_cast<int>(rng() % kVersions);
      r = Call("PUT", fn + "/code", json{{"ZipFile", zips_[next.version]}}.dump());
    } else if (pick < 6) {
      next.timeout = 3 + static_cast<int>(rng() % 5);
      r = Call("PUT", fn + "/configuration", json{{"Timeout", next.timeout}}.dump());
    } else if (pick < 7) {
      next.reserved = 3 + static_cast<int>(rng() % 6);
      r = Call("PUT", "/2017-10-31/functions/" + name + "/concurrency",
               json{{"ReservedConcurrentExecutions", next.reserved}}.dump());
    } else if (pick < 8) {
      next.reserved = -1;
      r = Call("DELETE", "/2017-10-31/functions/" + name + "/concurrency");
    } else {
      next = State{};
      r = Call("DELETE", fn);
    }
    if (r.status == 599 || r.status == 503) {  // no answer, or draining: unknown
      *maybe = next;
      return false;
    }
    if (r.status / 100 == 2) *model = next;
    else Failure(name + ": a change the model allows was refused: " + std::to_string(r.status) + " " + r.body);
    return true;
  }

  // What the daemon says the function is now.
  State Observe(const std::string& name) {
    State s;
    auto g = Call("GET", "/2015-03-31/functions/" + name);
    if (g.status == 404) return s;
    json j = json::parse(g.body, nullptr, false);
    if (g.status != 200 || !j.is_object()) {
      Failure(name + ": GetFunction " + std::to_string(g.status) + " " + g.body);
      return s;
    }
    s.exists = true;
    s.timeout = j["Configuration"]["Timeout"];
    if (j.contains("Concurrency")) s.reserved = j["Concurrency"]["ReservedConcurrentExecutions"];
    if (s.reserved == 0) return s;
    auto i = Call("POST", "/2015-03-31/functions/" + name + "/invocations", "{}");
    json b = json::parse(i.body, nullptr, false);
    if (i.status != 200 || !b.is_object() || !b.contains("version")) {
      Failure(name + ": invocation after restart: " + std::to_string(i.status) + " " + i.body);
      return s;
    }
    s.version = b["version"];
    return s;
  }

  std::string state_;
  std::string endpoint_;
  std::vector<std::string> zips_;
  std::unique_ptr<Daemon> daemon_;
  std::mutex mu_;
  std::vector<std::string> failures_;
};

TEST_F(ChurnRestartTest, ChurnAgainstSteadyInvocationsAcrossSigtermAndKill9) {
  endpoint_ = daemon_->endpoint();
  auto created = Call("POST", "/2015-03-31/functions",
                      json{{"FunctionName", "steady"}, {"Runtime", "python3.11"},
                           {"Handler", "app.handler"}, {"Role", "r"},
                           {"Code", {{"ZipFile", zips_[0]}}}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  std::map<std::string, State> model;
  for (const auto& n : kChurned) model[n] = State{};
  uint64_t steady_ok = 0, churn_invocations = 0, changes = 0;

  for (int round = 0; round < 4; ++round) {
    const bool kill9 = round % 2 == 1;
    std::atomic<bool> stop_invoking{false}, stop_churn{false};
    std::atomic<uint64_t> ok{0}, churn_calls{0}, churn_changes{0};
    std::map<std::string, State> maybe;  // unacknowledged change in flight at the restart
    std::mutex model_mu;
    std::vector<std::thread> invokers, churners;
    for (int t = 0; t < 3; ++t)
      invokers.emplace_back([&] {
        while (!stop_invoking) {
          auto r = Call("POST", "/2015-03-31/functions/steady/invocations", "{}");
          json b = json::parse(r.body, nullptr, false);
          if (r.status == 200 && !r.headers.count("x-amz-function-error") && b.is_object() &&
              b.value("version", -1) == 0)
            ++ok;
          else
            Failure("steady: " + std::to_string(r.status) + " " + r.body.substr(0, 300));
        }
      });
    invokers.emplace_back([&, round] {  // churned functions: 200 with some version, 404 or 429
      std::mt19937 rng(1000 + round);
      while (!stop_invoking) {
        const std::string& n = kChurned[rng() % kChurned.size()];
        auto r = Call("POST", "/2015-03-31/functions/" + n + "/invocations", "{}");
        ++churn_calls;
        json b = json::parse(r.body, nullptr, false);
        bool fine = r.status == 404 || r.status == 429 ||
                    (r.status == 200 && !r.headers.count("x-amz-function-error") && b.is_object() &&
                     b.contains("version"));
        if (!fine) Failure(n + ": " + std::to_string(r.status) + " " + r.body.substr(0, 300));
      }
    });
    for (size_t k = 0; k < kChurned.size(); ++k)
      churners.emplace_back([&, k, round] {
        const std::string& n = kChurned[k];
        std::mt19937 rng(static_cast<unsigned>(7919 * round + k));
        State m;
        {
          std::lock_guard lock(model_mu);
          m = model[n];
        }
        while (!stop_churn) {
          State pending;
          bool answered = Churn(n, rng, &m, &pending);
          std::lock_guard lock(model_mu);
          model[n] = m;
          if (!answered) {
            maybe[n] = pending;
            return;  // the daemon is going away: its last change is unknown
          }
          ++churn_changes;
        }
      });

    std::this_thread::sleep_for(std::chrono::seconds(8));
    stop_invoking = true;
    for (auto& t : invokers) t.join();
    // The churn goes on into the restart: a change may be cut off by it.
    if (kill9) daemon_->Kill9();
    daemon_.reset();  // SIGTERM (or reaps the killed one)
    stop_churn = true;
    for (auto& t : churners) t.join();
    daemon_ = Daemon::Start({}, state_);
    endpoint_ = daemon_->endpoint();

    for (const auto& n : kChurned) {
      State seen = Observe(n);
      bool fits = seen == model[n] || (maybe.count(n) && seen == maybe[n]);
      EXPECT_TRUE(fits) << "round " << round << (kill9 ? " (kill -9) " : " (SIGTERM) ") << n
                        << ": after the restart " << seen.ToString() << ", acknowledged "
                        << model[n].ToString()
                        << (maybe.count(n) ? ", or unacknowledged " + maybe[n].ToString() : "");
      model[n] = seen;  // the next round starts from what is
    }
    State steady = Observe("steady");
    EXPECT_TRUE(steady.exists && steady.version == 0) << steady.ToString();
    // Code trees on disk: exactly one per function, none left of superseded or deleted ones.
    size_t functions = 1, trees = 0;
    for (const auto& n : kChurned) functions += model[n].exists;
    for (const auto& e : fs::directory_iterator(state_ + "/code")) trees += e.is_directory();
    EXPECT_EQ(trees, functions) << "round " << round;
    {
      std::lock_guard lock(mu_);
      EXPECT_TRUE(failures_.empty()) << "round " << round << ": " << failures_.size()
                                     << " failures; first: " << failures_.front();
      failures_.clear();
    }
    EXPECT_GT(ok.load(), 0u) << "round " << round;
    steady_ok += ok;
    churn_invocations += churn_calls;
    changes += churn_changes;
  }
  daemon_.reset();
  std::vector<std::string> left;  // of this test's daemons (mounts of other tests' dirs are theirs)
  for (const auto& l : Leftovers())
    if (l.rfind("mount ", 0) != 0 || l.find(state_) != std::string::npos) left.push_back(l);
  EXPECT_EQ(left, std::vector<std::string>{});
  std::cout << "[ measured ] 4 rounds: " << steady_ok << " steady invocations, " << churn_invocations
            << " invocations of churned functions, " << changes << " acknowledged changes\n";
}

}  // namespace
}  // namespace forklet::testing
