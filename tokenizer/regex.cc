// PCRE2 wrapper (see regex.h). Match data and JIT stacks are per thread, so one compiled
// pattern serves every encoding thread without locking.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace lmserve::tokenizer {

namespace {

// Oniguruma's Unicode definitions: \s is White_Space, \w is Letter|Mark|Number|Pc.
constexpr const char* kSpaceItems = "\\t-\\r\\x{20}\\x{85}\\p{Z}";
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{N}\\p{Pc}";

struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Long runs of whitespace under patterns like \s+(?!\S) outgrow the default 32 KiB.
    jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

std::string translate_oniguruma_classes(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's' || e == 'w') {
        const char* items = e == 's' ? kSpaceItems : kWordItems;
        if (in_class) out += items;
        else out += std::string("[") + items + "]";
      } else if ((e == 'S' || e == 'W') && !in_class) {
        out += std::string("[^") + (e == 'S' ? kSpaceItems : kWordItems) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class [:name:]
        const size_t close = p.find(":]", i + 2);
        if (close != std::string::npos) {
          out.append(p, i, close + 2 - i);
          i = close + 1;
          continue;
        }
      }
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    out += c;
    if (c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
    }
  }
  return out;
}

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

static std::unique_ptr<Regex::Impl> compile(const std::string& pattern, uint32_t extra,
                                            const std::string& where);

Regex Regex::from_pattern(const std::string& pattern, const std::string& where) {
  return Regex(compile(translate_oniguruma_classes(pattern), 0, where));
}

Regex Regex::literal(const std::string& text, const std::string& where) {
  // PCRE2_LITERAL excludes PCRE2_UCP, so escape instead: ASCII punctuation gets a backslash,
  // everything else is literal in a pattern anyway.
  std::string escaped;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) {
      if (u < 0x20 || u == 0x7F) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "\\x{%x}", u);
        escaped += hex;
        continue;
      }
      escaped += '\\';
    }
    escaped += c;
  }
  return Regex(compile(escaped, 0, where));
}

static std::unique_ptr<Regex::Impl> compile(const std::string& pattern, uint32_t extra,
                                            const std::string& where) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  auto impl = std::make_unique<Regex::Impl>();
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | extra, &error, &error_offset, nullptr);
  if (!impl->code) {
    throw std::runtime_error(where + ": regex does not compile at offset " + std::to_string(error_offset) +
                             ": " + pcre2_message(error));
  }
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0;
  return impl;
}

std::vector<MatchRange> Regex::find_matches(std::string_view text) const {
  std::vector<MatchRange> out;
  if (text.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  ThreadMatchState& st = thread_state();
  if (!st.data) throw std::runtime_error("regex: out of memory for match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0, previous_end = 0;
  bool have_previous = false;
  while (search_from <= text.size()) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                                          st.data, st.context)
                        : pcre2_match(impl_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                                      st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error("regex match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t s = ov[0], e = ov[1];
    // Like the onig crate: an empty match right where the previous match ended is skipped.
    if (s == e && have_previous && e == previous_end) {
      if (search_from >= text.size()) break;
      size_t len = 1;
      const auto b = static_cast<unsigned char>(text[search_from]);
      if (b >= 0xF0) len = 4;
      else if (b >= 0xE0) len = 3;
      else if (b >= 0xC0) len = 2;
      search_from += len;
      continue;
    }
    if (s > previous_end) out.push_back({previous_end, s, false});
    out.push_back({s, e, true});
    previous_end = e;
    have_previous = true;
    search_from = e;
  }
  if (previous_end < text.size()) out.push_back({previous_end, text.size(), false});
  return out;
}

}  // namespace lmserve::tokenizer
