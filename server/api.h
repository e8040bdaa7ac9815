// The types between the HTTP layer and the routes. A route is a function from an
// ApiRequest to a RouteResult: either a finished Response, or a Job that the session
// runs against the engine (submit its requests, feed it their outputs, write what it
// produces). Neither side touches the other's concerns: routes never see a socket,
// the session never sees JSON schemas. Tests drive routes and jobs directly.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"

namespace lmserve::server {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string body;
  std::string request_id;  // the server's id for logs and response ids
  std::string authorization;  // the Authorization header, if any
  std::string origin;         // the Origin header, if any (CORS)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(int status, const nlohmann::json& body);
};

// An engine output and when it reached the server (inter-token latency).
struct EngineEvent {
  engine::RequestOutput output;
  engine::Clock::time_point received{};
};

struct StopRequest {
  std::string request_id;
  int sequence_index = 0;
};

// What a job produces from one engine output.
struct JobStep {
  std::string stream_data;             // SSE bytes to send now (streaming jobs)
  std::vector<StopRequest> stops;      // sequences whose stop string matched
};

class Job {
 public:
  virtual ~Job() = default;
  // The engine requests to submit (ids and on_output are set by the runner).
  std::vector<engine::Request>& requests() { return requests_; }
  bool streaming() const { return streaming_; }

  // Called in arrival order, never concurrently.
  virtual JobStep on_output(EngineEvent&& event) = 0;
  // True once every engine request has finished (and nothing more will be written).
  virtual bool finished() const = 0;
  // Non-streaming: the whole response. Streaming: the last SSE bytes (usage, [DONE]).
  virtual Response final_response() = 0;
  // For the request log line.
  virtual int prompt_tokens() const = 0;
  virtual int completion_tokens() const = 0;

 protected:
  std::vector<engine::Request> requests_;
  bool streaming_ = false;
};

using RouteResult = std::variant<Response, std::unique_ptr<Job>>;

}  // namespace lmserve::server
