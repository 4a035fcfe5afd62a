// Where a warm invocation's time goes inside the daemon, stage by stage (parse, route, admit,
// channel_out, runner, bill, respond). The thread that serves an HTTP request carries it from
// its bytes to its answer (one thread per connection), so each part marks its point in a
// thread_local timeline, with no allocation or lock; when the answer is written, a complete warm
// invocation's stages go into fixed-size reservoirs per runtime (its last 4096) that GET
// /forklet/v1/stats reads (`warm_path`). A request that is not a warm invocation is dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace forklet::timeline {

enum class Point : uint8_t {
  kRead,       // the request's bytes are in and parsed by the HTTP parser (http_server)
  kParsed,     // converted to the API's request (http_server)
  kRouted,     // the Lambda API has resolved the function: the scheduler starts (Scheduler::Invoke)
  kAdmitted,   // an instance is taken and thawed (Scheduler::Invoke)
  kSent,       // the invocation frame is written to the instance's channel (Instance::Invoke)
  kReceived,   // its result frame is read (Instance::Invoke)
  kBilled,     // released, recorded (ledger, metrics) and the REPORT made (LambdaApi)
  kResponded,  // the answer is written to the client (http_server)
  kCount
};

void Begin();  // kRead, and forgets the previous request's marks
void Mark(Point p);
void MarkWarm(const std::string& runtime);  // this request is a warm invocation of that runtime
void End();       // kResponded; a complete warm invocation's stages go into the reservoirs

struct StageSummary {
  std::string name;  // parse, route, admit, channel_out, runner, bill, respond
  size_t n = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, mean_us = 0;
};
// Per runtime family, over its last 4096 warm invocations.
std::map<std::string, std::vector<StageSummary>> Summary();
void Reset();

}  // namespace forklet::timeline
