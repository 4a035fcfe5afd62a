// The native runtime's instance (placeholder).
#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"

namespace forklet::runner {

int RunNative() {
  if (!ReadInit()) return 2;
  SendInitError("Runtime.Unavailable", "native runtime not built yet", 0);
  return 1;
}

}  // namespace forklet::runner
