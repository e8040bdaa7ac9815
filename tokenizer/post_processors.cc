// Post-processor implementations (see post_processors.h).
#include "tokenizer/post_processors.h"

#include <vector>

#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

struct TemplatePiece {
  bool is_sequence;  // $A
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
};

class TemplateProcessing final : public PostProcessor {
 public:
  explicit TemplateProcessing(std::vector<TemplatePiece> single) : single_(std::move(single)) {}
  void process(Encoding& e, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    Encoding out;
    for (const auto& piece : single_) {
      if (piece.is_sequence) {
        out.ids.insert(out.ids.end(), e.ids.begin(), e.ids.end());
        out.tokens.insert(out.tokens.end(), e.tokens.begin(), e.tokens.end());
        out.offsets.insert(out.offsets.end(), e.offsets.begin(), e.offsets.end());
        out.special_tokens_mask.insert(out.special_tokens_mask.end(), e.special_tokens_mask.begin(),
                                       e.special_tokens_mask.end());
      } else {
        out.ids.insert(out.ids.end(), piece.ids.begin(), piece.ids.end());
        out.tokens.insert(out.tokens.end(), piece.tokens.begin(), piece.tokens.end());
        out.offsets.insert(out.offsets.end(), piece.ids.size(), {0, 0});
        out.special_tokens_mask.insert(out.special_tokens_mask.end(), piece.ids.size(), 1);
      }
    }
    e = std::move(out);
  }

 private:
  std::vector<TemplatePiece> single_;
};

// ByteLevel post-processing only trims the whitespace characters out of token offsets.
class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool add_prefix_space, bool trim_offsets)
      : add_prefix_space_(add_prefix_space), trim_offsets_(trim_offsets) {}
  void process(Encoding& e, bool) const override {
    if (!trim_offsets_) return;
    for (size_t i = 0; i < e.size(); ++i) {
      if (e.special_tokens_mask[i]) continue;
      const std::string& token = e.tokens[i];
      std::vector<char32_t> chars;
      for (size_t k = 0, len = 0; k < token.size(); k += len) chars.push_back(unicode::decode_at(token, k, len));
      auto is_space = [](char32_t c) { return c == 0x120 || unicode::is_whitespace(c); };  // 0x120 = 'Ġ'
      size_t leading = 0, trailing = 0;
      while (leading < chars.size() && is_space(chars[leading])) ++leading;
      while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
      auto& [begin, end] = e.offsets[i];
      if (leading > 0) {
        const bool is_first = i == 0 || begin == 0;
        if (is_first && add_prefix_space_ && leading == 1) leading = 0;
        begin = std::min(begin + leading, end);
      }
      if (trailing > 0 && end >= trailing) end = std::max(end - trailing, begin);
    }
  }

 private:
  bool add_prefix_space_, trim_offsets_;
};

class SequenceProcessing final : public PostProcessor {
 public:
  explicit SequenceProcessing(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(Encoding& e, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->process(e, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::vector<TemplatePiece> parse_template(const Json& j, const std::string& path, const Json* special_tokens,
                                          const std::string& special_path) {
  std::vector<TemplatePiece> pieces;
  require_array(j, path);
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string p = json_path(path, i);
    const Json& item = require_object(j[i], p);
    if (const Json* seq = member(item, "Sequence")) {
      const std::string sp = json_path(p, "Sequence");
      const std::string id = as_string(required(*seq, sp, "id"), json_path(sp, "id"));
      if (id != "A") fail(json_path(sp, "id"), "a single-sequence template can only use sequence A, got " + id);
      pieces.push_back({true, {}, {}});
    } else if (const Json* special = member(item, "SpecialToken")) {
      const std::string sp = json_path(p, "SpecialToken");
      const std::string name = as_string(required(*special, sp, "id"), json_path(sp, "id"));
      if (!special_tokens || !special_tokens->contains(name)) {
        fail(json_path(sp, "id"), "special token \"" + name + "\" is not defined in " + special_path);
      }
      const std::string dp = json_path(special_path, name);
      const Json& def = require_object((*special_tokens)[name], dp);
      TemplatePiece piece{false, {}, {}};
      const Json& ids = require_array(required(def, dp, "ids"), json_path(dp, "ids"));
      const Json& tokens = require_array(required(def, dp, "tokens"), json_path(dp, "tokens"));
      if (ids.size() != tokens.size()) fail(dp, "ids and tokens differ in length");
      for (size_t k = 0; k < ids.size(); ++k) {
        piece.ids.push_back(as_token_id(ids[k], json_path(json_path(dp, "ids"), k)));
        piece.tokens.push_back(as_string(tokens[k], json_path(json_path(dp, "tokens"), k)));
      }
      pieces.push_back(std::move(piece));
    } else {
      fail(p, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  return pieces;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& path) {
  const std::string type = component_type(j, path);
  if (type == "TemplateProcessing") {
    const std::string special_path = json_path(path, "special_tokens");
    const Json* special = member(j, "special_tokens");
    if (special) require_object(*special, special_path);
    return std::make_unique<TemplateProcessing>(
        parse_template(required(j, path, "single"), json_path(path, "single"), special, special_path));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelProcessing>(bool_or(j, path, "add_prefix_space", true),
                                                 bool_or(j, path, "trim_offsets", true));
  }
  if (type == "Sequence") {
    const std::string list_path = json_path(path, "processors");
    const Json& list = require_array(required(j, path, "processors"), list_path);
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(make_post_processor(list[i], json_path(list_path, i)));
    return std::make_unique<SequenceProcessing>(std::move(steps));
  }
  fail(json_path(path, "type"), "unsupported post-processor \"" + type + "\"");
}

std::unique_ptr<PostProcessor> make_bos_eos_processor(std::optional<SpecialTokenRef> bos,
                                                      std::optional<SpecialTokenRef> eos) {
  std::vector<TemplatePiece> pieces;
  if (bos) pieces.push_back({false, {bos->id}, {bos->token}});
  pieces.push_back({true, {}, {}});
  if (eos) pieces.push_back({false, {eos->id}, {eos->token}});
  return std::make_unique<TemplateProcessing>(std::move(pieces));
}

}  // namespace lmserve::tokenizer
