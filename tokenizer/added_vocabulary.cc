// Added-token matching (see added_vocabulary.h).
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

void TokenMatcher::add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char c : pattern) {
    auto& children = nodes_[static_cast<size_t>(node)].children;
    auto it = std::find_if(children.begin(), children.end(), [c](const auto& p) { return p.first == c; });
    if (it != children.end()) {
      node = it->second;
    } else {
      const auto next = static_cast<int32_t>(nodes_.size());
      nodes_[static_cast<size_t>(node)].children.emplace_back(c, next);
      nodes_.emplace_back();
      node = next;
    }
  }
  // The first token registered with a given content wins, like HF's map insertion.
  if (nodes_[static_cast<size_t>(node)].token_index < 0) nodes_[static_cast<size_t>(node)].token_index = token_index;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

std::vector<TokenMatcher::Match> TokenMatcher::find_all(std::string_view text) const {
  std::vector<Match> out;
  if (empty()) return out;
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best_token = -1;
    size_t best_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      const auto& children = nodes_[static_cast<size_t>(node)].children;
      const unsigned char c = static_cast<unsigned char>(text[k]);
      auto it = std::find_if(children.begin(), children.end(), [c](const auto& p) { return p.first == c; });
      if (it == children.end()) break;
      node = it->second;
      if (nodes_[static_cast<size_t>(node)].token_index >= 0) {
        best_token = nodes_[static_cast<size_t>(node)].token_index;
        best_end = k + 1;
      }
    }
    if (best_token >= 0) {
      out.push_back({i, best_end, best_token});
      i = best_end;
    } else {
      ++i;
    }
  }
  return out;
}

void AddedVocabulary::load(const Json& j, const std::string& path, const Normalizer* normalizer) {
  require_array(j, path);
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string p = json_path(path, i);
    const Json& t = require_object(j[i], p);
    AddedToken token;
    token.id = as_token_id(required(t, p, "id"), json_path(p, "id"));
    token.content = as_string(required(t, p, "content"), json_path(p, "content"));
    if (token.content.empty()) fail(json_path(p, "content"), "empty added token");
    if (unicode::first_invalid_byte(token.content)) fail(json_path(p, "content"), "invalid UTF-8");
    token.single_word = bool_or(t, p, "single_word", false);
    token.lstrip = bool_or(t, p, "lstrip", false);
    token.rstrip = bool_or(t, p, "rstrip", false);
    token.special = bool_or(t, p, "special", false);
    token.normalized = bool_or(t, p, "normalized", !token.special);
    by_id_[token.id] = tokens_.size();
    by_content_.emplace(token.content, tokens_.size());
    tokens_.push_back(std::move(token));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (!t.normalized) {
      raw_matcher_.add(t.content, static_cast<int32_t>(i));
    } else if (normalizer) {
      NormalizedString content(t.content, 0);
      normalizer->normalize(content);
      normalized_matcher_.add(content.str(), static_cast<int32_t>(i));
    } else {
      normalized_matcher_.add(t.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {

// Rust char::is_alphanumeric() || '_' on the last / first character.
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t start = s.size() - 1, len = 0;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  const char32_t c = unicode::decode_at(s, start, len);
  return c == '_' || unicode::is_alphanumeric(c);
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len = 0;
  const char32_t c = unicode::decode_at(s, 0, len);
  return c == '_' || unicode::is_alphanumeric(c);
}

// Start of the whitespace run that ends `s` (s.size() when none).
size_t whitespace_run_start(std::string_view s) {
  size_t pos = s.size();
  while (pos > 0) {
    size_t start = pos - 1, len = 0;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (!unicode::is_whitespace(unicode::decode_at(s, start, len))) break;
    pos = start;
  }
  return pos;
}

// Length of the whitespace run that starts `s`.
size_t whitespace_run_length(std::string_view s) {
  size_t pos = 0, len = 0;
  while (pos < s.size() && unicode::is_whitespace(unicode::decode_at(s, pos, len))) pos += len;
  return pos;
}

}  // namespace

void AddedVocabulary::split_with_matcher(const NormalizedString& s, const TokenMatcher& matcher,
                                         std::vector<Split>& out) const {
  const std::string_view text = s.str();
  if (matcher.empty()) {
    out.push_back(Split{s, -1});
    return;
  }
  size_t start_offset = 0;
  for (const auto& m : matcher.find_all(text)) {
    const AddedToken& token = tokens_[static_cast<size_t>(m.token_index)];
    size_t start = m.begin, stop = m.end;
    if (token.single_word) {
      const bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      const bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    // Whitespace already claimed by the previous match is not taken twice.
    if (token.lstrip) start = std::max(whitespace_run_start(text.substr(0, start)), start_offset);
    if (token.rstrip) stop += whitespace_run_length(text.substr(stop));
    if (start > start_offset) out.push_back(Split{s.slice(start_offset, start), -1});
    out.push_back(Split{s.slice(start, stop), token.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back(Split{s.slice(start_offset, text.size()), -1});
}

std::vector<Split> AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer) const {
  std::vector<Split> first;
  split_with_matcher(NormalizedString(text, 0), raw_matcher_, first);
  std::vector<Split> result;
  result.reserve(first.size());
  for (auto& split : first) {
    if (split.added_id >= 0) {
      result.push_back(std::move(split));
      continue;
    }
    if (normalizer) normalizer->normalize(split.text);
    const size_t before = result.size();
    split_with_matcher(split.text, normalized_matcher_, result);
    // HF drops pieces that ended up empty.
    result.erase(std::remove_if(result.begin() + static_cast<std::ptrdiff_t>(before), result.end(),
                                [](const Split& s) { return s.added_id < 0 && s.text.empty(); }),
                 result.end());
  }
  return result;
}

}  // namespace lmserve::tokenizer
