// The native runtime's instance: dlopen the function's shared object and call its handler with
// the C ABI of forklet.h, one invocation at a time.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <variant>

#include "lang-runners/native/forklet.h"
#include "lang-runners/zygote/modes.h"
#include "lang-runners/zygote/runner_channel.h"

namespace forklet::runner {
namespace {

constexpr const char* kTaskRoot = "/var/task";

struct Function {
  forklet_handler_fn* handler = nullptr;
  forklet_init_fn* init = nullptr;
};

struct LoadError {
  std::string type, message;
};

// Handler "dir/libname.symbol" -> /var/task/dir/libname.so and its symbol.
std::variant<Function, LoadError> Load(const std::string& handler) {
  auto dot = handler.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == handler.size())
    return LoadError{"Runtime.MalformedHandlerName",
                     "Bad handler '" + handler + "': expected FILE.SYMBOL, e.g. libhello.handler"};
  std::string file = handler.substr(0, dot), symbol = handler.substr(dot + 1);
  std::string path = std::string(kTaskRoot) + "/" + file;
  if (!file.ends_with(".so")) path += ".so";
  void* so = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    const char* why = dlerror();
    return LoadError{"Runtime.ImportModuleError",
                     "Unable to load shared object '" + path + "': " + (why ? why : "dlopen failed")};
  }
  Function f;
  f.handler = reinterpret_cast<forklet_handler_fn*>(dlsym(so, symbol.c_str()));
  if (!f.handler)
    return LoadError{"Runtime.HandlerNotFound",
                     "Handler '" + symbol + "' missing on shared object '" + path + "'"};
  f.init = reinterpret_cast<forklet_init_fn*>(dlsym(so, "forklet_init"));
  return f;
}

std::string Or(const char* s, const std::string& fallback) { return s && *s ? s : fallback; }

// Runs the handler on one invocation and reports its result.
bool Serve(const Function& fn, const Init& init, const Invoke& invoke) {
  forklet_context ctx{FORKLET_ABI_VERSION, init.memory_mb,     invoke.request_id.c_str(),
                      init.function.c_str(), init.arn.c_str(), invoke.deadline_ms};
  forklet_response out{};
  uint64_t t0 = MonotonicMicros();
  int rc = fn.handler(&ctx, invoke.event.c_str(), invoke.event.size(), &out);
  uint64_t handler_us = MonotonicMicros() - t0;
  std::string body;
  bool ok = rc == 0 && out.len <= kMaxResponseBytes;
  if (ok) {
    body = out.body ? std::string(out.body, out.len) : "null";
  } else if (rc == 0) {
    body = ResponseTooLargeBody();
  } else {
    std::string type = Or(out.error_type, "HandlerError");
    std::string message = Or(out.error_message, "handler returned " + std::to_string(rc));
    fprintf(stderr, "[ERROR] %s: %s\n", type.c_str(), message.c_str());
    body = Dump(ErrorBody(type, message));
  }
  if (out.free_body && out.body) out.free_body(const_cast<char*>(out.body));
  return SendResult(ok, handler_us, body);
}

}  // namespace

int RunNative() {
  auto init = ReadInit();
  if (!init) return 2;
  ApplyEnvironment(init->env);
  uint64_t t0 = MonotonicMicros();
  if (chdir(kTaskRoot) != 0) perror("chdir /var/task");
  auto loaded = Load(init->handler);
  if (auto* e = std::get_if<LoadError>(&loaded)) {
    SendInitError(e->type, e->message, MonotonicMicros() - t0);
    return 1;
  }
  const Function& fn = std::get<Function>(loaded);
  if (fn.init) {
    forklet_response out{};
    if (int rc = fn.init(&out); rc != 0) {
      SendInitError(Or(out.error_type, "Runtime.InitError"),
                    Or(out.error_message, "forklet_init returned " + std::to_string(rc)),
                    MonotonicMicros() - t0);
      return 1;
    }
  }
  if (!SendReady(MonotonicMicros() - t0)) return 0;
  for (;;) {
    auto frame = ReadFrame();
    if (!frame) return 0;  // the daemon closed the channel: the instance is retired
    auto invoke = AsInvoke(std::move(*frame));
    if (!invoke) return 2;
    if (!Serve(fn, *init, *invoke)) return 0;
  }
}

}  // namespace forklet::runner
