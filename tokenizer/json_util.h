// Typed, path-aware reads of tokenizer.json values: every failure throws LoadError whose
// message starts with the JSON path (e.g. "model.merges[12]: expected a string").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

using Json = nlohmann::json;

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline std::string json_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}
inline std::string json_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw LoadError(path + ": " + what);
}

inline const Json& require_object(const Json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "expected an object");
  return j;
}

inline const Json& require_array(const Json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "expected an array");
  return j;
}

// Member `key` of object `j` (at `path`); nullptr when absent or null.
inline const Json* member(const Json& j, const std::string& key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

inline const Json& required(const Json& j, const std::string& path, const std::string& key) {
  const Json* m = member(j, key);
  if (!m) fail(json_path(path, key), "missing");
  return *m;
}

inline std::string as_string(const Json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "expected a string");
  return j.get<std::string>();
}

inline bool as_bool(const Json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "expected true or false");
  return j.get<bool>();
}

inline int64_t as_int(const Json& j, const std::string& path) {
  if (!j.is_number_integer()) fail(path, "expected an integer");
  return j.get<int64_t>();
}

inline int32_t as_token_id(const Json& j, const std::string& path) {
  const int64_t v = as_int(j, path);
  if (v < 0 || v > INT32_MAX) fail(path, "token id " + std::to_string(v) + " out of range");
  return static_cast<int32_t>(v);
}

inline std::string string_or(const Json& j, const std::string& path, const std::string& key,
                             const std::string& fallback) {
  const Json* m = member(j, key);
  return m ? as_string(*m, json_path(path, key)) : fallback;
}

inline bool bool_or(const Json& j, const std::string& path, const std::string& key, bool fallback) {
  const Json* m = member(j, key);
  return m ? as_bool(*m, json_path(path, key)) : fallback;
}

inline std::optional<std::string> optional_string(const Json& j, const std::string& path, const std::string& key) {
  const Json* m = member(j, key);
  if (!m) return std::nullopt;
  return as_string(*m, json_path(path, key));
}

inline std::string component_type(const Json& j, const std::string& path) {
  require_object(j, path);
  return as_string(required(j, path, "type"), json_path(path, "type"));
}

// A string that must hold exactly one character (HF stores some options as `char`).
inline char32_t single_char(const Json& j, const std::string& path) {
  const std::string s = as_string(j, path);
  if (s.empty() || unicode::first_invalid_byte(s)) fail(path, "expected a single character");
  size_t len = 0;
  const char32_t cp = unicode::decode_at(s, 0, len);
  if (len != s.size()) fail(path, "expected a single character, got \"" + s + "\"");
  return cp;
}

}  // namespace lmserve::tokenizer
