// TLS on the HTTP listener: certificate loading and the connection stream; see tls.h.
#include "runtime/api/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include <boost/asio/error.hpp>

namespace forklet::api {
namespace {

// OpenSSL's queued reason, for a message (the first one, which says most).
std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// A file that cannot be opened is named with its errno, before OpenSSL's vaguer words.
Status Readable(const std::string& flag, const std::string& path) {
  if (path.empty()) return MakeError(flag, "no file given");
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return SysError(flag + " " + path);
  fclose(f);
  return {};
}

}  // namespace

Result<std::shared_ptr<TlsCertificate>> TlsCertificate::Load(const std::string& cert_path,
                                                             const std::string& key_path) {
  if (auto s = Readable("--tls-cert", cert_path); !s) return s.error();
  if (auto s = Readable("--tls-key", key_path); !s) return s.error();
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return MakeError("TLS", OpenSslReason());
  std::shared_ptr<TlsCertificate> out(new TlsCertificate(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A client that closes without close_notify has still sent whole requests: that is its end.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1)
    return MakeError("--tls-cert " + cert_path,
                     "not a PEM certificate (chain): " + OpenSslReason());
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL 3 compares the key with the certificate here already.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return MakeError("--tls-key " + key_path,
                       "does not match the certificate in --tls-cert " + cert_path);
    }
    return MakeError("--tls-key " + key_path,
                     "not an unencrypted PEM private key: " + OpenSslReason());
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return MakeError("--tls-key " + key_path,
                     "does not match the certificate in --tls-cert " + cert_path);
  return out;
}

TlsCertificate::~TlsCertificate() { SSL_CTX_free(ctx_); }

SSL* TlsCertificate::NewSession(int fd) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

bool TlsStream::Wait(short events, boost::beast::error_code& ec) {
  for (;;) {
    int timeout = -1;
    if (deadline_ != std::chrono::steady_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline_ - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        ec = boost::asio::error::timed_out;
        return false;
      }
      timeout = static_cast<int>(std::min<long long>(left, INT_MAX));
    }
    pollfd p{fd_, events, 0};
    int rc = ::poll(&p, 1, timeout);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) {
      ec.assign(errno, boost::system::system_category());
      return false;
    }
  }
}

bool TlsStream::Retry(int rc, boost::beast::error_code& ec) {
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ) return Wait(POLLIN, ec);
  if (err == SSL_ERROR_WANT_WRITE) return Wait(POLLOUT, ec);
  if (err == SSL_ERROR_SYSCALL && errno == EINTR) return true;
  if (err == SSL_ERROR_ZERO_RETURN) {
    ec = boost::asio::error::eof;  // Beast turns this into end_of_stream / partial_message
  } else if (err == SSL_ERROR_SYSCALL && errno != 0) {
    ec.assign(errno, boost::system::system_category());
  } else {
    ec = boost::asio::error::connection_reset;  // a protocol error: nothing more to say to it
  }
  ERR_clear_error();
  return false;
}

bool TlsStream::Handshake(boost::beast::error_code& ec) {
  ec = {};
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_accept(ssl_);
    if (rc == 1) return true;
    if (!Retry(rc, ec)) return false;
  }
}

size_t TlsStream::Read(void* data, size_t size, boost::beast::error_code& ec) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    int rc = SSL_read_ex(ssl_, data, size, &n);
    if (rc == 1) return n;
    if (!Retry(rc, ec)) return 0;
  }
}

size_t TlsStream::Write(const void* data, size_t size, boost::beast::error_code& ec) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    int rc = SSL_write_ex(ssl_, data, size, &n);
    if (rc == 1) return n;
    if (!Retry(rc, ec)) return 0;
  }
}

bool TlsStream::WaitReadable(std::chrono::milliseconds timeout) {
  if (SSL_pending(ssl_) > 0) return true;
  pollfd p{fd_, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

void TlsStream::Shutdown() {
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);  // non-blocking: close_notify goes out if the socket takes it
  ERR_clear_error();
}

}  // namespace forklet::api
