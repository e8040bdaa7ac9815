// Normalizer implementations (see normalizers.h). Unicode normalization is utf8proc's; the
// alignment of normalized bytes to the input is kept per grapheme cluster.
#include "tokenizer/normalizers.h"

#include <utf8proc.h>

#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

bool all_ascii(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  void normalize(NormalizedString& s) const override {
    const std::string& text = s.str();
    if (all_ascii(text)) return;  // ASCII is invariant under every normal form
    const std::string whole = unicode::normalize(text, form_);
    if (whole == text) return;
    // Normalizing cluster by cluster keeps a fine alignment; it matches whole-text
    // normalization in practice, and if it ever did not, the whole text wins.
    std::string pieced;
    std::vector<std::pair<std::string, Offsets>> parts;
    unicode::for_each_grapheme(text, [&](size_t b, size_t e) {
      std::string part = unicode::normalize(std::string_view(text).substr(b, e - b), form_);
      pieced += part;
      parts.emplace_back(std::move(part), s.input_range(b, e));
    });
    const Offsets all = s.input_range(0, text.size());
    s.rebuild([&](NormalizedString::Builder& b) {
      if (pieced == whole) {
        for (const auto& [part, range] : parts) b.append(part, range);
      } else {
        b.append(whole, all);
      }
    });
  }

 private:
  unicode::NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    const std::string& text = s.str();
    std::string lowered;
    s.rebuild([&](NormalizedString::Builder& b) {
      size_t i = 0, len = 0;
      while (i < text.size()) {
        const char32_t cp = unicode::decode_at(text, i, len);
        if (cp < 0x80 && !(cp >= 'A' && cp <= 'Z')) {
          b.copy(s, i, i + 1);
        } else {
          lowered.clear();
          unicode::append_lowercase(lowered, cp);
          b.append(lowered, s.input_range(i, i + len));
        }
        i += len;
      }
    });
  }
};

class StripAccents final : public Normalizer {
 public:
  // HF removes every nonspacing mark (category Mn).
  void normalize(NormalizedString& s) const override {
    const std::string& text = s.str();
    s.rebuild([&](NormalizedString::Builder& b) {
      size_t i = 0, len = 0;
      while (i < text.size()) {
        const char32_t cp = unicode::decode_at(text, i, len);
        if (cp < 0x80 || utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_MN) {
          b.copy(s, i, i + len);
        }
        i += len;
      }
    });
  }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedString& s) const override {
    const std::string& text = s.str();
    size_t begin = 0, end = text.size(), len = 0;
    if (left_) {
      while (begin < end && unicode::is_whitespace(unicode::decode_at(text, begin, len))) begin += len;
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        if (!unicode::is_whitespace(unicode::decode_at(text, start, len))) break;
        end = start;
      }
    }
    if (begin == 0 && end == text.size()) return;
    s.rebuild([&](NormalizedString::Builder& b) { b.copy(s, begin, end); });
  }

 private:
  bool left_, right_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(NormalizedString& s) const override {
    if (!s.empty()) s.prepend(prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override {
    const auto matches = pattern_.find_matches(s.str());
    if (matches.size() == 1 && !matches[0].is_match) return;
    s.rebuild([&](NormalizedString::Builder& b) {
      for (const auto& m : matches) {
        if (m.is_match) b.append(content_, s.input_range(m.begin, m.end));
        else b.copy(s, m.begin, m.end);
      }
    });
  }

 private:
  Regex pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& step : steps_) step->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

// {"String": "..."} or {"Regex": "..."}, as used by Replace and Split.
Regex make_pattern(const Json& j, const std::string& path) {
  require_object(j, path);
  if (const Json* s = member(j, "String")) return Regex::literal(as_string(*s, json_path(path, "String")), path);
  if (const Json* r = member(j, "Regex")) {
    const std::string where = json_path(path, "Regex");
    return Regex::from_pattern(as_string(*r, where), where);
  }
  fail(path, "expected {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path) {
  const std::string type = component_type(j, path);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip") {
    return std::make_unique<Strip>(bool_or(j, path, "strip_left", true), bool_or(j, path, "strip_right", true));
  }
  if (type == "Prepend") return std::make_unique<Prepend>(as_string(required(j, path, "prepend"), json_path(path, "prepend")));
  if (type == "Replace") {
    return std::make_unique<Replace>(make_pattern(required(j, path, "pattern"), json_path(path, "pattern")),
                                     as_string(required(j, path, "content"), json_path(path, "content")));
  }
  if (type == "Sequence") {
    const std::string list_path = json_path(path, "normalizers");
    const Json& list = require_array(required(j, path, "normalizers"), list_path);
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(make_normalizer(list[i], json_path(list_path, i)));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail(json_path(path, "type"), "unsupported normalizer \"" + type + "\"");
}

}  // namespace lmserve::tokenizer
