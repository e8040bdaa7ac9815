// Listener: the accept loop. Each accepted connection gets its own strand and session
// coroutine; the listener never waits on a session.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "server/http/session.h"

namespace lmserve::server::http {

class Listener {
 public:
  // Binds host:port (port 0 = an ephemeral port). Throws std::runtime_error naming the
  // address when it cannot.
  Listener(boost::asio::io_context& ioc, const std::string& host, int port, SessionShared& shared);
  unsigned short port() const { return port_; }
  void start();
  // Stops accepting; sessions already running continue. Thread-safe.
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  SessionShared& shared_;
  unsigned short port_ = 0;
};

}  // namespace lmserve::server::http
