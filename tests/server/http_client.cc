// Blocking test client (see http_client.h).
#include "tests/server/http_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace lmserve::server::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using net::ip::tcp;

namespace {

void set_timeouts(tcp::socket& s, double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void connect(tcp::socket& s, unsigned short port) {
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
}

}  // namespace

Connection::Connection(unsigned short port, double timeout_s) : socket_(ioc_) {
  connect(socket_, port);
  set_timeouts(socket_, timeout_s);
}

Connection::~Connection() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

bool Connection::is_open() const { return socket_.is_open(); }

HttpReply Connection::request(const std::string& method, const std::string& target, const std::string& body,
                              const Headers& headers, int version) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, version};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(true);
  bhttp::write(socket_, req);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 30);
  if (method == "HEAD") parser.skip(true);
  bhttp::read(socket_, buffer, parser);
  auto res = parser.release();
  HttpReply reply;
  reply.status = res.result_int();
  reply.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  return reply;
}

HttpReply http_request(unsigned short port, const std::string& method, const std::string& target,
                       const std::string& body, const Headers& headers) {
  Connection c(port);
  return c.request(method, target, body, headers);
}

HttpReply post_json(unsigned short port, const std::string& target, const json& body, const Headers& headers) {
  return http_request(port, "POST", target, body.dump(), headers);
}

HttpReply get(unsigned short port, const std::string& target, const Headers& headers) {
  return http_request(port, "GET", target, "", headers);
}

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    else if (!line.empty()) throw std::runtime_error("unexpected SSE line: " + line);
  }
  return out;
}

RawSocket::RawSocket(unsigned short port) : socket_(ioc_) {
  connect(socket_, port);
  set_timeouts(socket_, 30);
}

void RawSocket::send(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }

std::string RawSocket::read_at_least(size_t n, double timeout_s) {
  set_timeouts(socket_, timeout_s);
  char buf[4096];
  while (received_.size() < n) {
    boost::system::error_code ec;
    size_t got = socket_.read_some(net::buffer(buf), ec);
    if (ec) break;
    received_.append(buf, got);
  }
  return received_;
}

std::string RawSocket::read_all(double timeout_s) { return read_at_least(SIZE_MAX, timeout_s); }

void RawSocket::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

double metric_value(const std::string& text, const std::string& name, const std::string& label) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nan("");
}

}  // namespace lmserve::server::test
