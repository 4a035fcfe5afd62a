/* Preloaded into criu by forkletd. criu reads a dumped task's resource limits with
 * prlimit(pid, res, NULL, &old), which needs CAP_SYS_RESOURCE for another user's process; some
 * hosts (containers) give root every capability but that one. Where the call fails with EPERM,
 * the same values are read from /proc/PID/limits. Nothing else changes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* The rows of /proc/PID/limits, in RLIMIT_* order. */
static const char* const kRows[] = {
    "Max cpu time",       "Max file size",       "Max data size",        "Max stack size",
    "Max core file size", "Max resident set",    "Max processes",        "Max open files",
    "Max locked memory",  "Max address space",   "Max file locks",       "Max pending signals",
    "Max msgqueue size",  "Max nice priority",   "Max realtime priority", "Max realtime timeout"};

static unsigned long long Value(const char* text) {
  return strcmp(text, "unlimited") == 0 ? RLIM_INFINITY : strtoull(text, NULL, 10);
}

static int FromProc(long pid, long resource, struct rlimit* out) {
  if (resource < 0 || resource >= (long)(sizeof(kRows) / sizeof(kRows[0]))) return -1;
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%ld/limits", pid);
  FILE* f = fopen(path, "re");
  if (!f) return -1;
  int rc = -1;
  size_t n = strlen(kRows[resource]);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, kRows[resource], n) != 0 || line[n] != ' ' || strlen(line) < 26) continue;
    char soft[32], hard[32];
    if (sscanf(line + 26, "%31s %31s", soft, hard) == 2) {
      out->rlim_cur = Value(soft);
      out->rlim_max = Value(hard);
      rc = 0;
    }
    break;
  }
  fclose(f);
  return rc;
}

long syscall(long number, ...) {
  static long (*real)(long, ...);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  long rc = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (rc != 0 && errno == EPERM && number == SYS_prlimit64 && a[0] != 0 && a[2] == 0 && a[3] != 0) {
    if (FromProc(a[0], a[1], (struct rlimit*)a[3]) == 0) return 0;
    errno = EPERM;
  }
  return rc;
}
