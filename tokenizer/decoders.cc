// Decoder implementations (see decoders.h), following HF tokenizers' decode_chain.
#include "tokenizer/decoders.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

constexpr const char* kReplacementChar = "\xEF\xBF\xBD";

class ByteLevelDecoder final : public Decoder {
 public:
  // Every token becomes its bytes (a token with a character outside the byte table is taken
  // verbatim); the joined bytes are read as UTF-8 with U+FFFD for ill-formed parts.
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& token : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0, len = 0; i < token.size(); i += len) {
        const int b = byte_level::char_to_byte(unicode::decode_at(token, i, len));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes.append(token);
      }
    }
    std::string text;
    unicode::append_lossy(text, bytes);
    tokens.assign(1, std::move(text));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend) : replacement_(std::move(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (true) {
        const size_t found = t.find(replacement_, pos);
        out.append(t, pos, found == std::string::npos ? std::string::npos : found - pos);
        if (found == std::string::npos) break;
        // The first token's replacement characters were added by the pre-tokenizer.
        if (!(i == 0 && prepend_)) out.push_back(' ');
        pos = found + replacement_.size();
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool prepend_;
};

// Rust's u8::from_str_radix(s, 16) on two characters (which accepts a leading '+').
int parse_hex_byte(std::string_view s) {
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (s[0] == '+') return digit(s[1]);
  const int hi = digit(s[0]), lo = digit(s[1]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (!unicode::first_invalid_byte(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);  // one per byte, as HF
      }
      pending.clear();
    };
    for (auto& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
        byte = parse_hex_byte(std::string_view(token).substr(3, 2));
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const auto& t : tokens) joined += t;
    tokens.assign(1, std::move(joined));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // byte position, code point
      for (size_t i = 0, len = 0; i < token.size(); i += len) chars.emplace_back(i, unicode::decode_at(token, i, len));
      size_t start_cut = 0;
      for (size_t i = 0; i < std::min(start_, chars.size()) && chars[i].second == content_; ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (chars[index].second != content_ || index < start_cut) break;
        stop_cut = index;
      }
      const size_t b = start_cut < chars.size() ? chars[start_cut].first : token.size();
      const size_t e = stop_cut < chars.size() ? chars[stop_cut].first : token.size();
      token = e > b ? token.substr(b, e - b) : std::string();
    }
  }
  size_t leading_chars_affected() const override { return start_; }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::string out;
      for (const auto& m : pattern_.find_matches(token)) {
        if (m.is_match) out += content_;
        else out.append(token, m.begin, m.end - m.begin);
      }
      token = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }
  size_t leading_chars_affected() const override {
    size_t n = 0;
    for (const auto& step : steps_) n = std::max(n, step->leading_chars_affected());
    return n;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

size_t as_count(const Json& j, const std::string& path, const std::string& key) {
  const Json* m = member(j, key);
  if (!m) return 0;
  const int64_t v = as_int(*m, json_path(path, key));
  if (v < 0) fail(json_path(path, key), "expected a non-negative integer");
  return static_cast<size_t>(v);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path) {
  const std::string type = component_type(j, path);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    const char32_t replacement = single_char(required(j, path, "replacement"), json_path(path, "replacement"));
    bool prepend = bool_or(j, path, "add_prefix_space", true);
    if (const Json* scheme = member(j, "prepend_scheme")) {
      const std::string p = json_path(path, "prepend_scheme");
      const std::string name = as_string(*scheme, p);
      if (name != "always" && name != "first" && name != "never") fail(p, "unsupported prepend_scheme \"" + name + "\"");
      prepend = name != "never";
    }
    return std::make_unique<MetaspaceDecoder>(unicode::encode_utf8(replacement), prepend);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const char32_t content = single_char(required(j, path, "content"), json_path(path, "content"));
    return std::make_unique<StripDecoder>(content, as_count(j, path, "start"), as_count(j, path, "stop"));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(make_pattern(required(j, path, "pattern"), json_path(path, "pattern")),
                                            as_string(required(j, path, "content"), json_path(path, "content")));
  }
  if (type == "Sequence") {
    const std::string list_path = json_path(path, "decoders");
    const Json& list = require_array(required(j, path, "decoders"), list_path);
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(make_decoder(list[i], json_path(list_path, i)));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  fail(json_path(path, "type"), "unsupported decoder \"" + type + "\"");
}

}  // namespace lmserve::tokenizer
