// TLS on the HTTP listener (OpenSSL): the server's certificate and key, and one connection's
// encrypted byte stream as a Beast sync stream (the counterpart of http_server.cc's FdStream).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>

#include "sandbox/error.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace forklet::api {

// A certificate chain and its private key (PEM files), checked to match. Loaded once per
// (re)load; connections take the one in force when they are accepted.
class TlsCertificate {
 public:
  // Errors name the file and what is wrong with it (missing, unreadable, not PEM, key does not
  // match the certificate), never the key's bytes.
  static Result<std::shared_ptr<TlsCertificate>> Load(const std::string& cert_path,
                                                      const std::string& key_path);
  ~TlsCertificate();
  TlsCertificate(const TlsCertificate&) = delete;
  TlsCertificate& operator=(const TlsCertificate&) = delete;
  // A new server session on a connected socket (set non-blocking by the caller); null on
  // failure (out of memory).
  SSL* NewSession(int fd) const;

 private:
  explicit TlsCertificate(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// One TLS connection on a non-blocking socket. Reads and writes wait (poll) for the socket up to
// the deadline, then fail with timed_out, as FdStream does. Owns the session, not the socket.
// Writes go through the socket's write(): the process must ignore SIGPIPE (forkletd does).
class TlsStream {
 public:
  TlsStream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  void set_deadline(std::chrono::steady_clock::time_point d) { deadline_ = d; }
  // The server side of the handshake, within the deadline.
  bool Handshake(boost::beast::error_code& ec);
  // Whether a request's first byte is there (decrypted and buffered, or on the socket) within
  // timeout.
  bool WaitReadable(std::chrono::milliseconds timeout);
  // Sends close_notify without waiting for the peer's.
  void Shutdown();

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, boost::beast::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers),
              end = boost::asio::buffer_sequence_end(buffers);
         it != end; ++it) {
      boost::asio::mutable_buffer b(*it);
      if (b.size() != 0) return Read(b.data(), b.size(), ec);
    }
    return 0;
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, boost::beast::error_code& ec) {
    ec = {};
    size_t total = boost::asio::buffer_size(buffers);
    if (total == 0) return 0;
    // A response's header and small body go out as one TLS record (one write), not several.
    if (total <= kCoalesce) {
      char joined[kCoalesce];
      boost::asio::buffer_copy(boost::asio::buffer(joined, total), buffers);
      return Write(joined, total, ec);
    }
    for (auto it = boost::asio::buffer_sequence_begin(buffers),
              end = boost::asio::buffer_sequence_end(buffers);
         it != end; ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() != 0) return Write(b.data(), b.size(), ec);
    }
    return 0;
  }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    boost::beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::beast::system_error(ec);
    return n;
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers) {
    boost::beast::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw boost::beast::system_error(ec);
    return n;
  }

 private:
  static constexpr size_t kCoalesce = 16 * 1024;  // one TLS record's worth
  size_t Read(void* data, size_t size, boost::beast::error_code& ec);
  size_t Write(const void* data, size_t size, boost::beast::error_code& ec);
  // After WANT_READ / WANT_WRITE: until the socket is ready or the deadline passes.
  bool Wait(short events, boost::beast::error_code& ec);
  // What an SSL call's failure means: again (after waiting), or an error in ec.
  bool Retry(int rc, boost::beast::error_code& ec);

  int fd_;
  SSL* ssl_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

}  // namespace forklet::api
