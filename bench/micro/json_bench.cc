// JSON on the invocation path (nlohmann): the API validates every payload (accept), parses
// request bodies and metadata, and dumps responses. Events of about 1 KB and 1 MB.
#include <string>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

// An API-Gateway-like event with records appended until its text reaches about `bytes`.
std::string Event(size_t bytes) {
  json e{{"resource", "/items/{id}"},
         {"path", "/items/42"},
         {"httpMethod", "POST"},
         {"headers", {{"content-type", "application/json"}, {"user-agent", "forklet-bench"}}},
         {"isBase64Encoded", false},
         {"records", json::array()}};
  size_t size = e.dump().size();
  for (int i = 0; size < bytes; ++i) {
    json r{{"id", i}, {"name", "item-" + std::to_string(i)}, {"price", 9.5 + i}, {"tags", {"a", "b"}},
           {"ok", i % 2 == 0}};
    size += r.dump().size() + 1;
    e["records"].push_back(std::move(r));
  }
  return e.dump();
}

const std::string& EventOf(int64_t bytes) {
  static const std::string kSmall = Event(1024), kLarge = Event(1 << 20);
  return bytes <= 1024 ? kSmall : kLarge;
}

void BM_JsonAccept(benchmark::State& state) {
  const std::string& text = EventOf(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(json::accept(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["event_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_JsonAccept)->Arg(1024)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

void BM_JsonDecode(benchmark::State& state) {
  const std::string& text = EventOf(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(json::parse(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["event_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_JsonDecode)->Arg(1024)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

void BM_JsonEncode(benchmark::State& state) {
  const std::string& text = EventOf(state.range(0));
  json doc = json::parse(text);
  for (auto _ : state) benchmark::DoNotOptimize(doc.dump());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["event_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_JsonEncode)->Arg(1024)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

}  // namespace
