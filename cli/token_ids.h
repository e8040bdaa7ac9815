// Parsing token-id lists given on the command line ("12,7,99"), shared by every
// subcommand that takes --ids.
#pragma once

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmserve::cli {

// "12,7,99" → ids; a one-line error naming `option` otherwise.
inline std::vector<int32_t> parse_ids_csv(const std::string& csv, const std::string& option) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= csv.size()) {
    size_t comma = csv.find(',', pos);
    if (comma == std::string::npos) comma = csv.size();
    std::string item = csv.substr(pos, comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      throw std::invalid_argument(option + ": '" + item + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

}  // namespace lmserve::cli
