// A reader for the float32 .npy files of the conformance fixtures (NumPy format 1.0/2.0,
// '<f4', C order), for tests. Throws std::runtime_error naming the file on anything else.
// In namespace lmserve so that tests in lmserve::engine and lmserve::test both see it.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmserve {

struct NpyArray {
  std::vector<size_t> shape;
  std::vector<float> data;

  size_t rows() const { return shape.empty() ? 0 : shape[0]; }
  size_t row_size() const {
    size_t n = 1;
    for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
  }
  std::span<const float> row(size_t r) const {
    if (r >= rows()) throw std::out_of_range("npy: row " + std::to_string(r) + " out of range");
    return std::span<const float>(data).subspan(r * row_size(), row_size());
  }
};

inline NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& why) { throw std::runtime_error(path + ": " + why); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) fail("not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail("truncated header");
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + 8, 4);  // little-endian hosts only (x86, arm64)
    header_len = len;
    offset = 12;
  } else {
    fail("unsupported .npy version " + std::to_string(major));
  }
  if (offset + header_len > bytes.size()) fail("truncated header");
  const std::string header = bytes.substr(offset, header_len);
  if (header.find("'descr': '<f4'") == std::string::npos) fail("dtype is not '<f4'");
  if (header.find("'fortran_order': False") == std::string::npos) fail("Fortran order is not supported");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(([^)]*)\))"))) fail("no shape in header");
  NpyArray a;
  const std::string dims = m[1];
  std::regex number(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it) {
    a.shape.push_back(static_cast<size_t>(std::stoull(it->str())));
  }
  size_t count = 1;
  for (size_t d : a.shape) count *= d;
  const size_t data_offset = offset + header_len;
  if (bytes.size() - data_offset != count * sizeof(float)) {
    fail("data size does not match the shape");
  }
  a.data.resize(count);
  std::memcpy(a.data.data(), bytes.data() + data_offset, a.data.size() * sizeof(float));
  return a;
}

}  // namespace lmserve
