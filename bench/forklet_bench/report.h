// A run's results and their forms: the table for people, JSON and CSV for machines, and the
// issue's bars checked against the numbers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/forklet_bench/measure.h"
#include "bench/forklet_bench/memory.h"
#include "bench/forklet_bench/stats.h"

namespace forklet::bench {

// Names of the baseline rows, used for the ratio columns and the bars.
constexpr const char* kPythonBaseline = "python3 -c";
constexpr const char* kBwrapBaseline = "bwrap + python3 -c";
constexpr const char* kFloorBaseline = "clone floor";
constexpr const char* kFloorProcessBaseline = "clone floor (process)";
constexpr const char* kHttpFloorBaseline = "http floor (nginx)";

struct LatencyRow {
  std::string name;   // "python3 zygote", "python3 -c", ...
  bool baseline = false;
  std::string what;   // one line: how it was measured
  std::vector<double> ms;
  Summary summary;
};

struct Bar {
  std::string bar;       // the words
  std::string measured;  // what was measured, with its unit
  std::string target;
  std::optional<bool> met;  // nullopt: not measured in this run
};

struct BenchResults {
  std::string machine;  // CPUs, kernel, load
  std::string config;   // samples, clients, daemon
  std::vector<LatencyRow> rows;
  std::vector<KindRun> runs;  // per start kind, for the stage breakdown
  std::vector<SweepPoint> sweep;
  std::optional<InstanceMemory> memory;
  std::string memory_error;
  std::vector<StemCellMemory> stem_cells;
  // The daemon's own warm path per runtime, stage by stage (GET /forklet/v1/stats warm_path).
  nlohmann::json warm_path = nlohmann::json::object();
  std::vector<Bar> bars;
};

std::string DescribeMachine();
// Fills results.bars from the rows, the sweep and the memory measurement.
void CheckBars(BenchResults& results, const std::string& family);

std::string FormatTable(const BenchResults& results);
Status WriteJson(const BenchResults& results, const std::string& path);
Status WriteCsv(const BenchResults& results, const std::string& path);

}  // namespace forklet::bench
