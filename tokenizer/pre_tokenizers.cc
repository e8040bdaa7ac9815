// Pre-tokenizer implementations (see pre_tokenizers.h).
#include "tokenizer/pre_tokenizers.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

// The GPT-2 pattern HF's ByteLevel uses when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        use_regex_(use_regex),
        regex_(Regex::from_pattern(kGpt2Pattern, "ByteLevel")) {}
  void pre_tokenize(std::vector<Split>& splits) const override {
    split_each(splits, [&](NormalizedString& s, std::vector<NormalizedString>& out) {
      if (add_prefix_space_ && s.str().front() != ' ') s.prepend(" ");
      if (use_regex_) split_normalized(s, regex_.find_matches(s.str()), SplitBehavior::Isolated, out);
      else out.push_back(std::move(s));
    });
    byte_level_transform(splits);
  }

 private:
  bool add_prefix_space_, use_regex_;
  Regex regex_;
};

class SplitPattern final : public PreTokenizer {
 public:
  SplitPattern(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Split>& splits) const override {
    split_each(splits, [&](NormalizedString& s, std::vector<NormalizedString>& out) {
      auto matches = pattern_.find_matches(s.str());
      if (invert_) invert_matches(matches);
      split_normalized(s, matches, behavior_, out);
    });
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), replacement_utf8_(unicode::encode_utf8(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Split>& splits) const override {
    split_each(splits, [&](NormalizedString& s, std::vector<NormalizedString>& out) {
      const std::string& text = s.str();
      if (text.find(' ') != std::string::npos) {
        s.rebuild([&](NormalizedString::Builder& b) {
          for (size_t i = 0; i < text.size(); ++i) {
            if (text[i] == ' ') b.append(replacement_utf8_, s.input_range(i, i + 1));
            else b.copy(s, i, i + 1);
          }
        });
      }
      const bool starts_with_replacement = s.str().compare(0, replacement_utf8_.size(), replacement_utf8_) == 0;
      // "first" only prepends to the piece that starts the input (not after an added token).
      if (!starts_with_replacement &&
          (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && s.input_begin() == 0))) {
        s.prepend(replacement_utf8_);
      }
      if (split_) {
        const char32_t r = replacement_;
        split_normalized(s, find_char_matches(s.str(), [r](char32_t c) { return c == r; }),
                         SplitBehavior::MergedWithNext, out);
      } else {
        out.push_back(std::move(s));
      }
    });
  }

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

// Splits on single characters selected by a predicate (Digits, Punctuation, WhitespaceSplit...).
template <typename Pred>
class CharSplit final : public PreTokenizer {
 public:
  CharSplit(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void pre_tokenize(std::vector<Split>& splits) const override {
    split_each(splits, [&](NormalizedString& s, std::vector<NormalizedString>& out) {
      split_normalized(s, find_char_matches(s.str(), pred_), behavior_, out);
    });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> make_char_split(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplit<Pred>>(pred, behavior);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Split>& splits) const override {
    for (const auto& step : steps_) step->pre_tokenize(splits);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

PrependScheme parse_prepend_scheme(const Json& j, const std::string& path) {
  if (const Json* scheme = member(j, "prepend_scheme")) {
    const std::string p = json_path(path, "prepend_scheme");
    const std::string name = as_string(*scheme, p);
    if (name == "always") return PrependScheme::Always;
    if (name == "first") return PrependScheme::First;
    if (name == "never") return PrependScheme::Never;
    fail(p, "unsupported prepend_scheme \"" + name + "\"");
  }
  // Files written before prepend_scheme existed carry add_prefix_space instead.
  return bool_or(j, path, "add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
}

}  // namespace

void byte_level_transform(std::vector<Split>& splits) {
  const auto& table = byte_level::byte_to_char();
  for (auto& split : splits) {
    if (split.added_id >= 0) continue;
    NormalizedString& s = split.text;
    const std::string& text = s.str();
    s.rebuild([&](NormalizedString::Builder& b) {
      size_t i = 0;
      while (i < text.size()) {
        const size_t len = unicode::sequence_length(static_cast<unsigned char>(text[i]));
        const Offsets range = s.input_range(i, i + len);
        for (size_t k = 0; k < len; ++k) b.append(table[static_cast<unsigned char>(text[i + k])], range);
        i += len;
      }
    });
  }
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path) {
  const std::string type = component_type(j, path);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(bool_or(j, path, "add_prefix_space", true), bool_or(j, path, "use_regex", true));
  }
  if (type == "Split") {
    Regex pattern = make_pattern(required(j, path, "pattern"), json_path(path, "pattern"));
    const std::string bpath = json_path(path, "behavior");
    const SplitBehavior behavior = parse_split_behavior(as_string(required(j, path, "behavior"), bpath), bpath);
    return std::make_unique<SplitPattern>(std::move(pattern), behavior, bool_or(j, path, "invert", false));
  }
  if (type == "Metaspace") {
    const char32_t replacement = single_char(required(j, path, "replacement"), json_path(path, "replacement"));
    return std::make_unique<Metaspace>(replacement, parse_prepend_scheme(j, path), bool_or(j, path, "split", true));
  }
  if (type == "Digits") {
    const bool individual = bool_or(j, path, "individual_digits", false);
    return make_char_split([](char32_t c) { return unicode::is_numeric(c); },
                           individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Punctuation") {
    const std::string bpath = json_path(path, "behavior");
    const SplitBehavior behavior = parse_split_behavior(string_or(j, path, "behavior", "Isolated"), bpath);
    return make_char_split([](char32_t c) { return unicode::is_punctuation(c); }, behavior);
  }
  if (type == "WhitespaceSplit") {
    return make_char_split([](char32_t c) { return unicode::is_whitespace(c); }, SplitBehavior::Removed);
  }
  if (type == "CharDelimiterSplit") {
    const char32_t delimiter = single_char(required(j, path, "delimiter"), json_path(path, "delimiter"));
    return make_char_split([delimiter](char32_t c) { return c == delimiter; }, SplitBehavior::Removed);
  }
  if (type == "Whitespace") {
    // HF: keep runs of word characters and runs of other non-space characters.
    return std::make_unique<SplitPattern>(Regex::from_pattern(R"(\w+|[^\w\s]+)", path), SplitBehavior::Removed,
                                          /*invert=*/true);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(make_char_split([](char32_t c) { return unicode::is_whitespace(c); }, SplitBehavior::Removed));
    steps.push_back(make_char_split([](char32_t c) { return unicode::is_punctuation(c); }, SplitBehavior::Isolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Sequence") {
    const std::string list_path = json_path(path, "pretokenizers");
    const Json& list = require_array(required(j, path, "pretokenizers"), list_path);
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(make_pre_tokenizer(list[i], json_path(list_path, i)));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  fail(json_path(path, "type"), "unsupported pre-tokenizer \"" + type + "\"");
}

}  // namespace lmserve::tokenizer
