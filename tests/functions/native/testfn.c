/* Test function of the native runtime: one handler per behaviour the tests check.
 * Deployed as libtestfn.SYMBOL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "forklet.h"

static char reply[8192];
static int calls;  /* kept across the invocations of one instance */
static int inits;

int forklet_init(forklet_response *out) {
  (void)out;
  ++inits;
  return 0;
}

/* The event and the context back, as JSON. */
int handler(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  const char *greeting = getenv("GREETING");
  char cwd[256] = "";
  if (!getcwd(cwd, sizeof(cwd))) strcpy(cwd, "?");
  printf("handler called with %.*s\n", (int)len, event);
  int n = snprintf(reply, sizeof(reply),
                   "{\"event\": %.*s, \"request_id\": \"%s\", \"function_name\": \"%s\", "
                   "\"arn\": \"%s\", \"memory_limit_mb\": %u, \"remaining_ms\": %lld, "
                   "\"abi_version\": %u, \"calls\": %d, \"inits\": %d, \"greeting\": \"%s\", "
                   "\"cwd\": \"%s\", \"event_nul\": %s}",
                   (int)len, len ? event : "null", ctx->request_id, ctx->function_name,
                   ctx->function_arn, ctx->memory_limit_mb, (long long)forklet_remaining_ms(ctx),
                   ctx->abi_version, ++calls, inits, greeting ? greeting : "", cwd,
                   event[len] == '\0' ? "true" : "false");
  out->body = reply;
  out->len = (size_t)n;
  return 0;
}

/* A function error with its own type and message. */
int fail(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  fprintf(stderr, "failing on purpose\n");
  snprintf(reply, sizeof(reply), "something went wrong: %.*s", (int)len, event);
  out->error_type = "CustomError";
  out->error_message = reply;
  return 1;
}

/* A body the runner frees once copied, of the size the event asks for ({"bytes": N}). */
int big(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)len;
  const char *at = strstr(event, "\"bytes\":");
  size_t n = at ? strtoul(at + 8, NULL, 10) : 0;
  char *body = malloc(n + 2);
  body[0] = '"';
  memset(body + 1, 'x', n);
  body[n + 1] = '"';
  out->body = body;
  out->len = n + 2;
  out->free_body = free;
  return 0;
}

/* A crash: the instance dies with SIGSEGV. */
int crash(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  (void)out;
  volatile int *p = NULL;
  return *p;
}

/* Never returns: the invocation times out. */
int spin(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  (void)out;
  for (volatile unsigned long i = 0;; ++i) {
  }
}

/* Touches memory until the cgroup's limit kills the instance. */
int oom(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  (void)out;
  for (;;) {
    char *p = malloc(16 << 20);
    if (p) memset(p, 1, 16 << 20);
  }
}

/* What the sandbox looks like from inside: /proc/self/status, as text. */
int status(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) {
    out->error_message = "cannot open /proc/self/status";
    return 1;
  }
  size_t n = fread(reply, 1, sizeof(reply) - 1, f);
  fclose(f);
  out->body = reply;
  out->len = n;
  return 0;
}

/* What protects its memory: the 16 AT_RANDOM bytes, the stack canary, where libc is mapped. */
int secrets(const forklet_context *ctx, const char *event, size_t len, forklet_response *out) {
  (void)ctx;
  (void)event;
  (void)len;
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  char at_random[33] = "";
  for (int i = 0; r && i < 16; ++i) snprintf(at_random + 2 * i, 3, "%02x", r[i]);
  unsigned long canary = 0;
#if defined(__x86_64__)
  __asm__("mov %%fs:0x28, %0" : "=r"(canary));
#endif
  char libc[32] = "";
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  while (maps && fgets(line, sizeof(line), maps)) {
    if (strstr(line, "libc.so") || strstr(line, "libc-")) {
      snprintf(libc, sizeof(libc), "%.*s", (int)strcspn(line, "-"), line);
      break;
    }
  }
  if (maps) fclose(maps);
  int n = snprintf(reply, sizeof(reply), "{\"at_random\": \"%s\", \"canary\": \"%lx\", \"libc_base\": \"%s\"}",
                   at_random, canary, libc);
  out->body = reply;
  out->len = (size_t)n;
  return 0;
}
