// lmserve-bench-tokenizer: encode throughput (MB/s, tokens/s) on a generated mixed text
// (prose, code, numbers, CJK, Cyrillic, Arabic, emoji), with one thread and with all cores.
//
//   lmserve-bench-tokenizer DIR [DIR...] [--mb N] [--threads N]
//
// The text is generated deterministically, so runs are comparable across builds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

using lmserve::tokenizer::Tokenizer;

struct Lcg {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }
};

const std::vector<std::string> kWords = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
    "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
    "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
    "who", "so", "no", "model", "server", "token", "language", "inference", "throughput", "latency", "memory",
    "attention", "generation", "probability", "distribution", "Wednesday", "London", "government", "research",
    "university", "experiment", "observed", "significantly", "however", "therefore", "nevertheless", "isn't",
    "don't", "we've", "they'll", "I'm", "O'Brien", "e-mail", "state-of-the-art", "GPU", "HTTP/2", "JSON"};
const std::vector<std::string> kCode = {
    "for (int i = 0; i < n; ++i) {\n    sum += values[i] * weights[i];\n}\n",
    "def encode(self, text: str) -> list[int]:\n    return [self.vocab[t] for t in text.split()]\n",
    "if err != nil {\n\treturn nil, fmt.Errorf(\"open %s: %w\", path, err)\n}\n",
    "const result = await fetch(`/v1/completions`, { method: 'POST', body: JSON.stringify(req) });\n",
    "SELECT id, name, COUNT(*) AS n FROM users WHERE created_at > '2024-01-01' GROUP BY id;\n",
    "    std::vector<std::pair<int32_t, float>> top_k(logits.size());\n"};
const std::vector<std::string> kForeign = {
    "机器学习是人工智能的一个分支。", "你好，世界！今天天气很好。", "東京都は日本の首都です。", "한국어 텍스트도 포함됩니다.",
    "Привет, мир! Как дела сегодня?", "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "مرحبا بالعالم، كيف حالك اليوم؟", "اللغة العربية تكتب من اليمين إلى اليسار.", "Ελληνικά γράμματα και λέξεις.",
    "हिन्दी में कुछ शब्द लिखे गए हैं।"};
const std::vector<std::string> kEmoji = {"😀", "🚀", "👍🏽", "❤️", "🎉", "👩‍💻", "🇯🇵", "✨", "🤖", "🙏"};

std::string number(Lcg& rng) {
  switch (rng.next() % 4) {
    case 0: return std::to_string(rng.next() % 100);
    case 1: return std::to_string(1900 + rng.next() % 130);
    case 2: return std::to_string(rng.next() % 100000) + "." + std::to_string(rng.next() % 100);
    default: return std::to_string(rng.next()) + "," + std::to_string(rng.next() % 1000);
  }
}

// Documents of about 4 KiB, `total_bytes` in all.
std::vector<std::string> generate_documents(size_t total_bytes) {
  Lcg rng{42};
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < total_bytes) {
    std::string doc;
    while (doc.size() < 4096) {
      const uint32_t kind = rng.next() % 100;
      if (kind < 55) {  // an English sentence
        const int n = 6 + static_cast<int>(rng.next() % 14);
        for (int w = 0; w < n; ++w) {
          std::string word = rng.pick(kWords);
          if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
          doc += (w ? " " : "") + word;
          if (rng.next() % 12 == 0) doc += ",";
        }
        doc += rng.next() % 5 == 0 ? "?\n" : ". ";
      } else if (kind < 67) {
        doc += rng.pick(kCode);
      } else if (kind < 77) {
        doc += "In " + number(rng) + " the value was " + number(rng) + " (+" + number(rng) + "%). ";
      } else if (kind < 94) {
        doc += rng.pick(kForeign) + " ";
      } else {
        doc += rng.pick(kEmoji) + rng.pick(kEmoji) + " ";
      }
    }
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

struct Result {
  double seconds;
  double cpu_seconds;  // process CPU time: shows per-core speed even on a busy machine
  size_t tokens;
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Result run(const Tokenizer& tok, const std::vector<std::string>& docs, unsigned threads) {
  std::atomic<size_t> next{0}, tokens{0};
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      size_t local = 0;
      for (size_t i; (i = next.fetch_add(1)) < docs.size();) local += tok.encode(docs[i], false).ids.size();
      tokens += local;
    });
  }
  for (auto& t : pool) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {seconds, process_cpu_seconds() - cpu_start, tokens.load()};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs;
  size_t megabytes = 12;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--mb") && i + 1 < argc) megabytes = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) cores = static_cast<unsigned>(std::stoul(argv[++i]));
    else dirs.emplace_back(argv[i]);
  }
  if (dirs.empty() || megabytes == 0 || cores == 0) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [TOKENIZER_DIR...] [--mb N (default 12)] [--threads N]\n", argv[0]);
    return 2;
  }
  const auto docs = generate_documents(megabytes << 20);
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  std::printf("text: %.1f MB in %zu documents (prose, code, numbers, CJK/Cyrillic/Arabic/Greek/Devanagari, emoji)\n",
              bytes / 1e6, docs.size());
  try {
    for (const auto& dir : dirs) {
      const auto tok = Tokenizer::from_dir(dir);
      for (const unsigned threads : {1u, cores}) {
        const Result r = run(*tok, docs, threads);
        std::printf("%-32s threads=%-3u %8.2f MB/s %11.0f tokens/s  (%zu tokens, %.2f s wall, %.2f MB per CPU-second)\n",
                    dir.c_str(), threads, bytes / 1e6 / r.seconds, r.tokens / r.seconds, r.tokens, r.seconds,
                    bytes / 1e6 / r.cpu_seconds);
        if (cores == 1) break;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
