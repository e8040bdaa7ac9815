// Subcommands of the `lmserve` executable. Each cli/cmd_<name>.cc adds one subcommand
// through LMSERVE_COMMAND; main.cc only wires them together.
//
// Conventions: `--json` prints exactly one JSON document on stdout (logs go to stderr);
// bad input is a one-line "error: ..." on stderr and exit code 1 (CLI11 usage errors: 2
// or more, with CLI11's own message). A command's callback reports failure by throwing
// std::exception; main.cc turns that into the one line.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace lmserve::cli {

using Registrar = std::function<void(CLI::App&)>;

// Registrars in the order their files were linked; main() calls each once.
std::vector<Registrar>& command_registry();

struct CommandRegistration {
  explicit CommandRegistration(Registrar r) { command_registry().push_back(std::move(r)); }
};

}  // namespace lmserve::cli

#define LMSERVE_CLI_CONCAT2(a, b) a##b
#define LMSERVE_CLI_CONCAT(a, b) LMSERVE_CLI_CONCAT2(a, b)
// LMSERVE_COMMAND(register_function): register_function(CLI::App&) adds one subcommand.
#define LMSERVE_COMMAND(fn) \
  static ::lmserve::cli::CommandRegistration LMSERVE_CLI_CONCAT(lmserve_cmd_, __LINE__){fn}
