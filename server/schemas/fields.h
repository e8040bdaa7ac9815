// Typed, strict access to the fields of a JSON request body. A field of the wrong type
// is a 400 naming it; null counts as absent (SDKs send explicit nulls for unset options).
// Each parser lists the fields it knows; anything else is rejected instead of ignored.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace lmserve::server::fields {

using nlohmann::json;

// The body must be a JSON object; throws 400 otherwise.
const json& require_object(const json& body, const std::string& what = "request body");
// 400 for any key not in `known`. `unsupported` keys get a message saying so plainly.
void reject_unknown(const json& body, std::initializer_list<const char*> known);

bool present(const json& body, const char* key);  // present and not null
std::optional<bool> get_bool(const json& body, const char* key);
std::optional<int64_t> get_int(const json& body, const char* key);
std::optional<double> get_number(const json& body, const char* key);
std::optional<std::string> get_string(const json& body, const char* key);

// Range helpers: 400 "`key` must be ..., got v".
int int_in_range(int64_t v, const char* key, int64_t lo, int64_t hi);
float number_in_range(double v, const char* key, double lo, double hi);

// A prompt-like field: a string, a list of strings, a list of token ids or a list of
// lists of token ids. Returns one entry per prompt; exactly one of text/ids is set.
struct PromptInput {
  std::optional<std::string> text;
  std::vector<int32_t> ids;
};
std::vector<PromptInput> get_prompts(const json& body, const char* key);

}  // namespace lmserve::server::fields
