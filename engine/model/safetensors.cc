// Memory-mapped .safetensors files: header validation and the (possibly sharded)
// checkpoint's name → tensor map. Nothing here reads a tensor byte before its range
// has been checked against the file.
#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace lmserve::engine {
namespace {

using nlohmann::json;

// The safetensors reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw std::runtime_error(source + ": " + what);
}
[[noreturn]] void fail_tensor(const std::string& source, const std::string& name,
                              const std::string& what) {
  throw std::runtime_error(source + ": tensor " + name + ": " + what);
}

// Element size of every dtype the format defines; 0 for names it does not.
size_t safetensors_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2" ||
      d == "F8_E8M0")
    return 1;
  return 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

struct Span {
  size_t begin, end;
  std::string name;
};

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path, std::string("mmap failed: ") + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::map<std::string, TensorInfo> parse_safetensors_header(
    const std::string& header_json, size_t data_size, const std::string& source,
    std::map<std::string, std::string>* unsupported) {
  const json header = json::parse(header_json, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(source, "header is not valid JSON");
  if (!header.is_object()) fail(source, "header is not a JSON object");

  std::map<std::string, TensorInfo> tensors;
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(source, "__metadata__ is not a JSON object");
      continue;
    }
    if (!entry.is_object()) fail_tensor(source, name, "entry is not a JSON object");
    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) fail_tensor(source, name, "missing 'dtype'");
    if (!dtype_it->is_string()) fail_tensor(source, name, "'dtype' is not a string");
    const std::string dtype_name = dtype_it->get<std::string>();
    const size_t elem_size = safetensors_dtype_size(dtype_name);
    if (elem_size == 0) fail_tensor(source, name, "unknown dtype '" + dtype_name + "'");

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) fail_tensor(source, name, "missing 'shape'");
    if (!shape_it->is_array()) fail_tensor(source, name, "'shape' is not a list");
    TensorInfo info{};
    // numel·elem_size is kept below 2^63 so no product can overflow.
    unsigned __int128 bytes = elem_size;
    for (const json& d : *shape_it) {
      if (!d.is_number_integer()) fail_tensor(source, name, "shape has a non-integer dimension");
      if (!d.is_number_unsigned() && d.get<int64_t>() < 0)
        fail_tensor(source, name, "shape has a negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail_tensor(source, name, "shape dimension too large");
      bytes *= dim;
      if (bytes > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()))
        fail_tensor(source, name, "shape is too large");
      info.shape.push_back(static_cast<int64_t>(dim));
    }

    auto off_it = entry.find("data_offsets");
    if (off_it == entry.end()) fail_tensor(source, name, "missing 'data_offsets'");
    if (!off_it->is_array() || off_it->size() != 2 || !(*off_it)[0].is_number_unsigned() ||
        !(*off_it)[1].is_number_unsigned())
      fail_tensor(source, name, "'data_offsets' is not a pair of non-negative integers");
    const uint64_t begin = (*off_it)[0].get<uint64_t>();
    const uint64_t end = (*off_it)[1].get<uint64_t>();
    if (begin > end) fail_tensor(source, name, "data_offsets end before they begin");
    if (end > data_size)
      fail_tensor(source, name, "data_offsets [" + std::to_string(begin) + ", " +
                                    std::to_string(end) + "] outside the data section (" +
                                    std::to_string(data_size) + " bytes)");
    if (end - begin != static_cast<uint64_t>(bytes))
      fail_tensor(source, name, "shape " + shape_string(info.shape) + " of " + dtype_name +
                                    " needs " + std::to_string(static_cast<uint64_t>(bytes)) +
                                    " bytes but data_offsets span " +
                                    std::to_string(end - begin));
    info.begin = static_cast<size_t>(begin);
    info.end = static_cast<size_t>(end);
    spans.push_back({info.begin, info.end, name});

    if (kernels::parse_dtype(dtype_name, &info.dtype) &&
        (dtype_name == "F32" || dtype_name == "F16" || dtype_name == "BF16")) {
      tensors.emplace(name, std::move(info));
    } else if (unsupported) {
      (*unsupported)[name] = dtype_name;
    } else {
      fail_tensor(source, name, "unsupported dtype " + dtype_name + " (lmserve reads F32, F16, BF16)");
    }
  }

  // Overlap check: sorted by start, each non-empty range must begin at or after the
  // end of every earlier one.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t reach = 0;
  std::string reach_name;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (s.begin < reach)
      fail_tensor(source, s.name, "data overlaps tensor " + reach_name);
    reach = s.end;
    reach_name = s.name;
  }
  return tensors;
}

std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& header_json,
                                                          size_t data_size,
                                                          const std::string& source) {
  return parse_safetensors_header(header_json, data_size, source, nullptr);
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_file(const std::string& path) {
  SafetensorsCheckpoint ckpt;
  ckpt.source_ = path;
  auto file = std::make_shared<MappedFile>(path);
  if (file->size() < 8) fail(path, "file too small to be safetensors (" + std::to_string(file->size()) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];  // little-endian
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " is absurd (limit " +
                   std::to_string(kMaxHeaderBytes) + ")");
  if (header_len > file->size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size " +
                   std::to_string(file->size()) + " (truncated file?)");
  const std::string header(reinterpret_cast<const char*>(file->data()) + 8, header_len);
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  std::map<std::string, std::string> unsupported;
  auto tensors = parse_safetensors_header(header, file->size() - data_start, path, &unsupported);
  // Kernels read elements in place (the CPU backend may alias the mapping), so every
  // tensor must sit at a multiple of its element size. Writers that do not pad the
  // header leave the whole data section misaligned: that is repaired by one aligned
  // copy of it. A tensor misaligned within the data section cannot be, and is refused.
  std::shared_ptr<const std::vector<float>> realigned;
  for (const auto& [name, info] : tensors) {
    const size_t align = kernels::dtype_size(info.dtype);
    if (info.begin % align != 0) fail_tensor(path, name, "data is not aligned to its element size");
    if (!realigned && data_start % align != 0) {
      const size_t data_size = file->size() - data_start;
      auto copy = std::make_shared<std::vector<float>>((data_size + 3) / 4);
      std::memcpy(copy->data(), file->data() + data_start, data_size);
      realigned = std::move(copy);
    }
    ckpt.tensors_.emplace(name, Entry{info, 0});
  }
  ckpt.realigned_.push_back(std::move(realigned));
  for (const auto& [name, dtype] : unsupported) ckpt.unsupported_[name] = {dtype, 0};
  ckpt.files_.push_back(std::move(file));
  ckpt.data_start_.push_back(data_start);
  return ckpt;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, "not a directory");
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec))
      fail(dir, "no model.safetensors or model.safetensors.index.json");
    return open_file(single_path.string());
  }

  const std::string index_source = index_path.string();
  std::ifstream in(index_source, std::ios::binary);
  if (!in) fail(index_source, "cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  const json index = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) fail(index_source, "not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) fail(index_source, "missing object 'weight_map'");

  SafetensorsCheckpoint ckpt;
  ckpt.source_ = index_source;
  std::map<std::string, size_t> shard_index;  // shard file name → files_ position
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) fail(index_source, "weight_map." + name + " is not a file name");
    const std::string file = shard.get<std::string>();
    // Shards live next to the index: no paths, so an index cannot point elsewhere.
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      fail(index_source, "weight_map." + name + ": invalid shard name '" + file + "'");
    if (shard_index.count(file)) continue;
    SafetensorsCheckpoint one = open_file((fs::path(dir) / file).string());
    const size_t fi = ckpt.files_.size();
    shard_index[file] = fi;
    ckpt.files_.push_back(one.files_[0]);
    ckpt.data_start_.push_back(one.data_start_[0]);
    ckpt.realigned_.push_back(one.realigned_[0]);
    for (auto& [tname, entry] : one.tensors_) {
      auto [it, inserted] = ckpt.tensors_.emplace(tname, Entry{entry.info, fi});
      if (!inserted)
        fail_tensor(ckpt.files_[fi]->path(), tname,
                    "also stored in " + ckpt.files_[it->second.file_index]->path());
    }
    for (auto& [tname, u] : one.unsupported_) ckpt.unsupported_[tname] = {u.first, fi};
  }
  // Every tensor the index lists must be where it says.
  for (const auto& [name, shard] : wm->items()) {
    const size_t fi = shard_index.at(shard.get<std::string>());
    auto it = ckpt.tensors_.find(name);
    size_t where = it != ckpt.tensors_.end() ? it->second.file_index
                                             : (ckpt.unsupported_.count(name) ? ckpt.unsupported_[name].second
                                                                               : SIZE_MAX);
    if (where != fi)
      fail_tensor(index_source, name, "listed in " + shard.get<std::string>() + " but not stored there");
  }
  return ckpt;
}

kernels::HostTensor SafetensorsCheckpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    auto u = unsupported_.find(name);
    if (u != unsupported_.end())
      fail_tensor(files_[u->second.second]->path(), name,
                  "unsupported dtype " + u->second.first + " (lmserve reads F32, F16, BF16)");
    fail(source_, "missing tensor " + name);
  }
  const Entry& e = it->second;
  kernels::HostTensor t;
  const size_t fi = e.file_index;
  const uint8_t* base = realigned_[fi] ? reinterpret_cast<const uint8_t*>(realigned_[fi]->data())
                                       : files_[fi]->data() + data_start_[fi];
  t.data = base + e.info.begin;
  t.dtype = e.info.dtype;
  t.shape = e.info.shape;
  t.name = name;
  return t;
}

kernels::HostTensor SafetensorsCheckpoint::get(const std::string& name,
                                               const std::vector<int64_t>& shape) const {
  kernels::HostTensor t = get(name);
  if (t.shape != shape) {
    const Entry& e = tensors_.at(name);
    fail(files_[e.file_index]->path(), "tensor " + name + " has shape " + shape_string(t.shape) +
                                           ", expected " + shape_string(shape));
  }
  return t;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, e] : tensors_) out.push_back(name);
  return out;
}

size_t SafetensorsCheckpoint::total_bytes() const {
  size_t total = 0;
  for (const auto& [name, e] : tensors_) total += e.info.end - e.info.begin;
  return total;
}

// Weighted by bytes, so that a few float32 norm vectors in a 16-bit checkpoint do not
// outvote the matrices.
kernels::DType SafetensorsCheckpoint::dominant_dtype() const {
  size_t bytes[3] = {0, 0, 0};
  for (const auto& [name, e] : tensors_) bytes[static_cast<int>(e.info.dtype)] += e.info.end - e.info.begin;
  int best = 0;
  for (int i = 1; i < 3; ++i)
    if (bytes[i] > bytes[best]) best = i;
  return static_cast<kernels::DType>(best);
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, const std::vector<Tensor>& tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const Tensor& t : tensors) {
    size_t bytes = kernels::dtype_size(t.dtype);
    for (int64_t d : t.shape) bytes *= static_cast<size_t>(d);
    header[t.name] = {{"dtype", kernels::dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {expected_, expected_ + bytes}}};
    expected_ += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) fail(path, std::string("cannot create: ") + std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, file_) != 8 || std::fwrite(text.data(), 1, text.size(), file_) != text.size())
    fail(path, "write failed");
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) std::fclose(file_);
}

void SafetensorsWriter::append(const void* data, size_t bytes) {
  if (!file_) fail(path_, "writer already finished");
  if (bytes > expected_ - written_) fail(path_, "more tensor bytes than the header declares");
  if (std::fwrite(data, 1, bytes, file_) != bytes) fail(path_, std::string("write failed: ") + std::strerror(errno));
  written_ += bytes;
}

void SafetensorsWriter::finish() {
  if (!file_) return;
  if (written_ != expected_)
    fail(path_, std::to_string(written_) + " tensor bytes written, header declares " + std::to_string(expected_));
  const bool ok = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok) fail(path_, "close failed");
}

}  // namespace lmserve::engine
