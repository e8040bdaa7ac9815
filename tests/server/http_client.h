// A small blocking HTTP/1.1 client for the server tests (Beast over one TCP connection
// per call, or a kept-alive Connection), plus SSE parsing and a raw socket for clients
// that misbehave on purpose (hang up mid-stream, send oversized or slow requests).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmserve::server::test {

using nlohmann::json;

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  json json_body() const { return json::parse(body); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A kept-alive connection; each call sends one request and reads one response.
class Connection {
 public:
  explicit Connection(unsigned short port, double timeout_s = 120);
  ~Connection();
  HttpReply request(const std::string& method, const std::string& target, const std::string& body = "",
                    const Headers& headers = {}, int version = 11);
  bool is_open() const;

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string buffer_;
};

HttpReply http_request(unsigned short port, const std::string& method, const std::string& target,
                       const std::string& body = "", const Headers& headers = {});
HttpReply post_json(unsigned short port, const std::string& target, const json& body, const Headers& headers = {});
HttpReply get(unsigned short port, const std::string& target, const Headers& headers = {});

// The `data:` payloads of an SSE body, in order; "[DONE]" appears as the string "[DONE]".
std::vector<std::string> sse_data(const std::string& body);

// A raw TCP socket to the server (bytes in, bytes out), for misbehaving clients.
class RawSocket {
 public:
  explicit RawSocket(unsigned short port);
  void send(const std::string& bytes);
  // Reads until at least `n` bytes arrived in total or the peer closed; returns what came.
  std::string read_at_least(size_t n, double timeout_s = 30);
  std::string read_all(double timeout_s = 30);  // until the peer closes
  void close();  // hang up (RST-free close)

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
};

// The value of a metric line `name{...labels containing `label`...} value` in /metrics text;
// NaN when absent.
double metric_value(const std::string& metrics_text, const std::string& name, const std::string& label = "");

}  // namespace lmserve::server::test
