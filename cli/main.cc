#include <cstdio>
#include <exception>

#include "cli/commands.h"

namespace lmserve::cli {
std::vector<Registrar>& command_registry() {
  static std::vector<Registrar> registry;
  return registry;
}
}  // namespace lmserve::cli

int main(int argc, char** argv) {
  CLI::App app{"lmserve: an inference server for decoder-only language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lmserve 0.1.0");
  for (auto& add_command : lmserve::cli::command_registry()) add_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
