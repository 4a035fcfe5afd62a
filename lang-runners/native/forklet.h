/* forklet's native function ABI: a shared object that the `native` runtime loads in the sandbox.
 *
 * A function is a shared object in the code bundle, named by Lambda's Handler field as FILE.SYMBOL:
 * the handler "libhello.handler" is the symbol `handler` of /var/task/libhello.so
 * ("lib/libhello.handler" is /var/task/lib/libhello.so). Build it with
 *
 *     cc -shared -fPIC -O2 -I lang-runners/native -o libhello.so hello.c
 *
 * and zip the .so (with whatever it reads at run time). The runner dlopens it with RTLD_NOW once
 * per instance, after the sandbox is up; the instance then serves one invocation at a time, so a
 * handler needs no locking and may keep state between invocations (as a warm Lambda does).
 * Its stdout and stderr are the function's log. A handler that crashes ends its instance: the
 * invocation fails with Runtime.ExitError and the next one starts a new instance.
 */
#ifndef FORKLET_NATIVE_FORKLET_H_
#define FORKLET_NATIVE_FORKLET_H_

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORKLET_ABI_VERSION 1

/* What a handler knows about its invocation (Lambda's context object). Valid during the call. */
typedef struct forklet_context {
  uint32_t abi_version;      /* FORKLET_ABI_VERSION of the runner */
  uint32_t memory_limit_mb;  /* the function's MemorySize */
  const char *request_id;    /* aws_request_id */
  const char *function_name;
  const char *function_arn;  /* invoked_function_arn */
  int64_t deadline_ms;       /* when the invocation times out, in ms since the epoch */
} forklet_context;

/* What a handler returns. The runner zeroes it before each call and copies `body` after it. */
typedef struct forklet_response {
  const char *body;             /* the response payload as the caller gets it (JSON by
                                   convention); NULL on success means `null` */
  size_t len;                   /* bytes of body (up to 6 MB) */
  void (*free_body)(void *body); /* if set, called on body once it is copied (e.g. free) */
  const char *error_type;       /* on failure: errorType (default "HandlerError") */
  const char *error_message;    /* on failure: errorMessage (default "handler returned N") */
} forklet_response;

/* The handler: returns 0 with the response in *out, or non-zero for a function error, which the
 * caller sees as {"errorMessage", "errorType"} with X-Amz-Function-Error: Unhandled. `event` is
 * the request payload (len bytes, followed by a NUL for convenience). */
typedef int forklet_handler_fn(const forklet_context *ctx, const char *event, size_t len,
                               forklet_response *out);

/* Optional: if the object exports `forklet_init`, it runs once when an instance starts, before
 * the first invocation (Lambda's init phase). Non-zero fails the init: the caller gets
 * out->error_type (default "Runtime.InitError") and out->error_message. */
typedef int forklet_init_fn(forklet_response *out);
int forklet_init(forklet_response *out);

/* Milliseconds left before the invocation times out (Lambda's getRemainingTimeInMillis). */
static inline int64_t forklet_remaining_ms(const forklet_context *ctx) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t left = ctx->deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
  return left > 0 ? left : 0;
}

#ifdef __cplusplus
}
#endif

#endif /* FORKLET_NATIVE_FORKLET_H_ */
