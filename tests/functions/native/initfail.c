/* Test function of the native runtime whose init fails: forklet_init reports an error. */
#include "forklet.h"

int forklet_init(forklet_response *out) {
  out->error_type = "ConfigError";
  out->error_message = "the configuration is missing";
  return 1;
}

/* Never called: the init fails first. */
int handler(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx, (void)event, (void)len;
  out->error_message = "the handler ran although its init failed";
  return 1;
}
