/* forklet-bench's empty function of the provided runtime: a bootstrap in C that answers every
 * event with null over one keep-alive connection to the Lambda Runtime API, as a compiled
 * custom runtime (Go, Rust, C++) does. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int conn = -1;
static char buf[64 * 1024];
static size_t have; /* bytes in buf not yet consumed */

static int connect_api(void) {
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API"); /* 127.0.0.1:9001 */
  const char *colon = api ? strchr(api, ':') : NULL;
  if (!colon) return -1;
  char host[64];
  snprintf(host, sizeof(host), "%.*s", (int)(colon - api), api);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) return -1;
  return fd;
}

static int send_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(conn, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one response; copies its Lambda-Runtime-Aws-Request-Id into id (if given) and skips its
 * body. Returns the status code, or -1. */
static int read_response(char *id, size_t id_cap) {
  char *end;
  while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
    if (have == sizeof(buf)) return -1;
    ssize_t r = recv(conn, buf + have, sizeof(buf) - have, 0);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  size_t head = (size_t)(end - buf) + 4;
  buf[head - 2] = '\0';
  int status = atoi(buf + 9); /* "HTTP/1.1 200" */
  size_t body = 0;
  for (char *line = strstr(buf, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
    char *h = line + 2;
    if (!strncasecmp(h, "Content-Length:", 15)) body = strtoul(h + 15, NULL, 10);
    if (id && !strncasecmp(h, "Lambda-Runtime-Aws-Request-Id:", 30)) {
      h += 30;
      while (*h == ' ') ++h;
      size_t n = strcspn(h, "\r\n");
      snprintf(id, id_cap, "%.*s", (int)n, h);
    }
  }
  memmove(buf, buf + head, have - head);
  have -= head;
  while (body > 0) { /* the event: an empty function does not look at it */
    if (have == 0) {
      ssize_t r = recv(conn, buf, sizeof(buf), 0);
      if (r <= 0) return -1;
      have = (size_t)r;
    }
    size_t n = body < have ? body : have;
    memmove(buf, buf + n, have - n);
    have -= n;
    body -= n;
  }
  return status;
}

int main(void) {
  conn = connect_api();
  if (conn < 0) {
    perror("bootstrap: connect to the Runtime API");
    return 1;
  }
  static const char next[] = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";
  char id[128], post[512];
  for (;;) {
    id[0] = '\0';
    if (send_all(next, sizeof(next) - 1) != 0 || read_response(id, sizeof(id)) != 200) return 1;
    int n = snprintf(post, sizeof(post),
                     "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: api\r\n"
                     "Content-Length: 4\r\n\r\nnull",
                     id);
    if (send_all(post, (size_t)n) != 0 || read_response(NULL, 0) != 202) return 1;
  }
}
