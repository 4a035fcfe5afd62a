/* forklet-bench's empty function of the native runtime: returns null. */
#include "forklet.h"

int handler(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  (void)out;
  return 0;
}
