// The nodejs runtime's instance (placeholder until the Node.js runner lands).
#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"

namespace forklet::runner {

int RunNodejs() {
  if (!ReadInit()) return 2;
  SendInitError("Runtime.Unavailable", "nodejs runtime not built yet", 0);
  return 1;
}

}  // namespace forklet::runner
