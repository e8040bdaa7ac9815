// `lmserve serve` as a child process: no --model serves demo/, --config plus flag and
// environment overrides, the progress and ready lines, one JSON log line per request on
// stderr, and SIGTERM: in-flight requests finish, then exit code 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/server/http_client.h"

namespace lmserve::server::test {
namespace {

struct Child {
  pid_t pid = -1;
  std::FILE* out = nullptr;  // the child's stdout
  std::string stderr_path;
  std::vector<std::string> lines;

  // Reads stdout lines until one matches `pattern`; returns its first capture.
  std::string wait_for(const std::regex& pattern) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out)) {
      std::string line(buf);
      lines.push_back(line);
      std::smatch m;
      if (std::regex_search(line, m, pattern)) return m.size() > 1 ? m[1].str() : line;
    }
    return "";
  }
  int wait_exit() {
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out) std::fclose(out);
  }
};

void start(Child& c, const std::vector<std::string>& args, const std::string& api_key) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  c.stderr_path = ::testing::TempDir() + "/lmserve_serve_stderr_" + std::to_string(getpid()) + ".log";
  c.pid = fork();
  ASSERT_GE(c.pid, 0);
  if (c.pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    std::FILE* err = std::fopen(c.stderr_path.c_str(), "w");
    dup2(fileno(err), STDERR_FILENO);
    close(pipe_fds[0]);
    setenv("LMSERVE_API_KEY", api_key.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(LMSERVE_EXE));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(LMSERVE_EXE, argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  c.out = fdopen(pipe_fds[0], "r");
}

TEST(ServerLifecycle, ServeDemoLogRequestsAndDrainOnSigterm) {
  Child c;
  const std::string config = std::string(LMSERVE_SOURCE_DIR) + "/configs/cpu-small.json";
  start(c, {"serve", "--port", "0", "--config", config, "--threads", "2", "--served-model-name", "tiny",
            "--shutdown-timeout", "20"},
        "env-key");
  std::string url = c.wait_for(std::regex(R"(serving on (http://\S+))"));
  ASSERT_FALSE(url.empty()) << "no ready line; stdout so far:\n" << ::testing::PrintToString(c.lines);
  bool saw_loading = false;
  for (const auto& l : c.lines) saw_loading = saw_loading || l.find("loading model") != std::string::npos;
  EXPECT_TRUE(saw_loading);
  unsigned short port = static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1)));

  // The API key came from LMSERVE_API_KEY, the name from the flag, demo/ from the default.
  EXPECT_EQ(get(port, "/v1/models").status, 401);
  Headers auth = {{"Authorization", "Bearer env-key"}};
  json models = get(port, "/v1/models", auth).json_body();
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_NE(models["data"][0]["root"].get<std::string>().find("demo"), std::string::npos);
  EXPECT_EQ(post_json(port, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 3}}, auth).status, 200);

  // A long streamed request is in flight when SIGTERM arrives; it still completes.
  std::string body = json{{"prompt", "Hi"}, {"max_tokens", 250}, {"ignore_eos", true}, {"temperature", 0},
                          {"stream", true}}.dump();
  RawSocket s(port);
  s.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer env-key\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string first = s.read_at_least(200);
  ASSERT_NE(first.find("200 OK"), std::string::npos) << first;
  kill(c.pid, SIGTERM);
  std::string all = s.read_all(30);
  EXPECT_NE(all.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(all.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(c.wait_exit(), 0);

  // One JSON line per request on stderr.
  std::ifstream err(c.stderr_path);
  std::string line;
  int completions = 0;
  while (std::getline(err, line)) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line);
    if (j.value("endpoint", "") != "/v1/completions") continue;
    ++completions;
    for (const char* k : {"id", "status", "latency_ms", "prompt_tokens", "completion_tokens"})
      EXPECT_TRUE(j.contains(k)) << line;
  }
  EXPECT_EQ(completions, 2);
}

TEST(ServerLifecycle, BadOptionsFailWithOneLine) {
  Child c;
  start(c, {"serve", "--port", "0", "--model", "/nonexistent/model"}, "");
  EXPECT_EQ(c.wait_exit(), 1);
  std::ifstream err(c.stderr_path);
  std::stringstream ss;
  ss << err.rdbuf();
  EXPECT_NE(ss.str().find("/nonexistent/model"), std::string::npos) << ss.str();
}

}  // namespace
}  // namespace lmserve::server::test
