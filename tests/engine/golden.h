// Helpers for the model conformance fixtures (tests/data/models/*/golden.json, see the
// README there): the model list, JSON loading, and float tolerance checks.
#pragma once

#include <cmath>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lmserve::test {

inline const std::vector<std::string>& golden_model_names() {
  static const std::vector<std::string> names = {"gpt2-tiny",  "gpt2-tiny-f16",  "gpt2-tiny-bf16",
                                                 "llama-tiny", "llama-tiny-f16", "llama-tiny-bf16"};
  return names;
}

inline std::string golden_model_dir(const std::string& name) {
  return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name;
}

inline nlohmann::json load_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

inline nlohmann::json load_golden(const std::string& name) {
  return load_json_file(golden_model_dir(name) + "/golden.json");
}

template <typename T>
std::vector<T> json_vector(const nlohmann::json& j) {
  return j.get<std::vector<T>>();
}

inline std::optional<int> json_optional_int(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<int>();
}

// |a - b| <= abs_tol + rel_tol · |b|
inline bool close_to(double a, double b, double rel_tol, double abs_tol) {
  return std::abs(a - b) <= abs_tol + rel_tol * std::abs(b);
}

}  // namespace lmserve::test
