// The accept loop (see listener.h).
#include "server/http/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <stdexcept>

namespace lmserve::server::http {

namespace net = boost::asio;
using net::ip::tcp;

Listener::Listener(net::io_context& ioc, const std::string& host, int port, SessionShared& shared)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), shared_(shared) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("--host " + host + ": not an IP address (" + ec.message() + ")");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto fail = [&](const char* what) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + what + ": " +
                             ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  port_ = acceptor_.local_endpoint().port();
}

void Listener::start() { net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached); }

void Listener::stop() {
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

net::awaitable<void> Listener::accept_loop() {
  for (;;) {
    tcp::socket socket(net::make_strand(ioc_));
    auto [ec] = co_await acceptor_.async_accept(socket, net::as_tuple(net::use_awaitable));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      // Out of file descriptors and the like: keep serving the connections we have.
      std::fprintf(stderr, "{\"event\":\"accept_error\",\"error\":\"%s\"}\n", ec.message().c_str());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);  // SSE chunks are small: send them now
    auto executor = socket.get_executor();
    net::co_spawn(executor, run_session(std::move(socket), shared_), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "{\"event\":\"session_error\",\"error\":\"%s\"}\n", ex.what());
      }
    });
  }
}

}  // namespace lmserve::server::http
