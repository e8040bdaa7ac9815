// Strict typed accessors for request bodies; every error names the field.
#include "server/schemas/fields.h"

#include <cmath>
#include <limits>

#include "server/schemas/errors.h"

namespace lmserve::server::fields {

namespace {
std::string type_name(const json& v) { return v.type_name(); }
}  // namespace

const json& require_object(const json& body, const std::string& what) {
  if (!body.is_object()) throw bad_request(what + " must be a JSON object, got " + type_name(body));
  return body;
}

void reject_unknown(const json& body, std::initializer_list<const char*> known) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) throw bad_request("unsupported field '" + it.key() + "'", it.key());
  }
}

bool present(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && !it->is_null();
}

std::optional<bool> get_bool(const json& body, const char* key) {
  if (!present(body, key)) return std::nullopt;
  const json& v = body.at(key);
  if (!v.is_boolean()) throw bad_request(std::string("'") + key + "' must be a boolean, got " + type_name(v), key);
  return v.get<bool>();
}

std::optional<int64_t> get_int(const json& body, const char* key) {
  if (!present(body, key)) return std::nullopt;
  const json& v = body.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  // 3.0 is an integer to a JavaScript client.
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  throw bad_request(std::string("'") + key + "' must be an integer, got " + v.dump(), key);
}

std::optional<double> get_number(const json& body, const char* key) {
  if (!present(body, key)) return std::nullopt;
  const json& v = body.at(key);
  if (!v.is_number()) throw bad_request(std::string("'") + key + "' must be a number, got " + type_name(v), key);
  double d = v.get<double>();
  if (!std::isfinite(d)) throw bad_request(std::string("'") + key + "' must be finite", key);
  return d;
}

std::optional<std::string> get_string(const json& body, const char* key) {
  if (!present(body, key)) return std::nullopt;
  const json& v = body.at(key);
  if (!v.is_string()) throw bad_request(std::string("'") + key + "' must be a string, got " + type_name(v), key);
  return v.get<std::string>();
}

int int_in_range(int64_t v, const char* key, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw bad_request(std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got " + std::to_string(v),
                      key);
  return static_cast<int>(v);
}

float number_in_range(double v, const char* key, double lo, double hi) {
  if (v < lo || v > hi)
    throw bad_request(std::string("'") + key + "' must be in [" + json(lo).dump() + ", " +
                          json(hi).dump() + "], got " + json(v).dump(),
                      key);
  return static_cast<float>(v);
}

namespace {
std::vector<int32_t> token_ids(const json& list, const char* key) {
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  for (const json& t : list) {
    if (!t.is_number_integer())
      throw bad_request(std::string("'") + key + "' token ids must be integers, got " + t.dump(), key);
    int64_t id = t.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max())
      throw bad_request(std::string("'") + key + "' token id out of range: " + std::to_string(id), key);
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}
}  // namespace

std::vector<PromptInput> get_prompts(const json& body, const char* key) {
  if (!present(body, key)) throw bad_request(std::string("'") + key + "' is required", key);
  const json& v = body.at(key);
  std::vector<PromptInput> out;
  if (v.is_string()) {
    out.push_back({v.get<std::string>(), {}});
    return out;
  }
  if (!v.is_array() || v.empty())
    throw bad_request(std::string("'") + key +
                          "' must be a string, a list of strings, a list of token ids or a list of lists of token ids",
                      key);
  if (v.front().is_number()) {
    out.push_back({std::nullopt, token_ids(v, key)});
    return out;
  }
  for (const json& item : v) {
    if (item.is_string()) {
      out.push_back({item.get<std::string>(), {}});
    } else if (item.is_array()) {
      if (item.empty()) throw bad_request(std::string("'") + key + "' has an empty token list", key);
      out.push_back({std::nullopt, token_ids(item, key)});
    } else {
      throw bad_request(std::string("'") + key + "' list items must be strings or token id lists", key);
    }
  }
  return out;
}

}  // namespace lmserve::server::fields
