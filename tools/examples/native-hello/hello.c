/* An example function of forklet's native runtime: {"name": "x"} -> {"hello": "x", ...}.
 *
 * Build it against lang-runners/native/forklet.h, then deploy the folder holding the .so with
 * the handler FILE.SYMBOL (from the repository root):
 *
 *     mkdir -p /tmp/native-hello
 *     cc -shared -fPIC -O2 -I lang-runners/native -o /tmp/native-hello/libhello.so \
 *         tools/examples/native-hello/hello.c
 *     build/bin/forklet deploy native-hello /tmp/native-hello --runtime native \
 *         --handler libhello.handler
 *     build/bin/forklet invoke native-hello '{"name": "forklet"}' --log
 *
 * (The build also makes it: build/examples/native-hello/libhello.so.)
 */
#include <stdio.h>
#include <string.h>

#include "forklet.h"

static char reply[1024];
static unsigned long invocations; /* an instance serves one invocation at a time and keeps state */

/* Optional: runs once per instance, before its first invocation (Lambda's init phase). */
int forklet_init(forklet_response *out) {
  (void)out;
  fprintf(stderr, "native-hello: instance ready\n");
  return 0;
}

int handler(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)len;
  /* The first string value after "name": no JSON library in an example this small. */
  const char *name = "world";
  size_t name_len = strlen(name);
  const char *at = strstr(event, "\"name\"");
  if (at && (at = strchr(at + 6, '"')) != NULL) {
    const char *end = strchr(at + 1, '"');
    if (end && (size_t)(end - at - 1) < 256) {
      name = at + 1;
      name_len = (size_t)(end - at - 1);
    }
  }
  if (memchr(name, '\\', name_len)) {
    out->error_type = "InvalidName";
    out->error_message = "names with escapes are not supported";
    return 1;
  }
  printf("hello, %.*s (request %s)\n", (int)name_len, name, ctx->request_id);
  int n = snprintf(reply, sizeof(reply),
                   "{\"hello\": \"%.*s\", \"request_id\": \"%s\", \"invocations\": %lu, "
                   "\"remaining_ms\": %lld}",
                   (int)name_len, name, ctx->request_id, ++invocations,
                   (long long)forklet_remaining_ms(ctx));
  out->body = reply;
  out->len = (size_t)n;
  return 0;
}
