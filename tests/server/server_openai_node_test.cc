// The official `openai` npm package, unmodified, against the server (node/openai_sdk.mjs).
// npm installs it into tests/server/node once; when npm cannot, the test fails saying so.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/server/test_server.h"

namespace lmserve::server::test {
namespace {

struct CommandResult {
  int status;
  std::string output;
};

CommandResult run(const std::string& command) {
  std::FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

TEST(ServerOpenAINode, OfficialSdkCompletionsAndEmbeddings) {
  const std::string dir = std::string(LMSERVE_SOURCE_DIR) + "/tests/server/node";
  ASSERT_EQ(run("node --version").status, 0) << "node is not installed; this test needs Node.js 18+";
  if (!std::filesystem::exists(dir + "/node_modules/openai/package.json")) {
    CommandResult npm = run("cd '" + dir + "' && npm install --no-audit --no-fund --loglevel=error");
    ASSERT_EQ(npm.status, 0) << "npm could not install the openai package (offline or no registry access?); "
                                "this test cannot run without it:\n"
                             << npm.output;
  }
  TestServer server;
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  CommandResult node = run("node '" + dir + "/openai_sdk.mjs' " + url + " demo");
  EXPECT_EQ(node.status, 0) << node.output;
  EXPECT_NE(node.output.find("ok"), std::string::npos) << node.output;
}

}  // namespace
}  // namespace lmserve::server::test
