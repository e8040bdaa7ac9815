// Reading .safetensors files: a little-endian u64 header length, a JSON header of
// {name: {dtype, shape, data_offsets}}, then the tensor bytes. Files are memory-mapped;
// tensors are views into the mapping.
//
// Every check a hostile file could defeat is made before any tensor byte is read:
// header length within the file, JSON well-formed, known dtype, shape × dtype size ==
// offset range, ranges inside the data section and not overlapping.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace lmserve::engine {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws: "<path>: <reason>"
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct TensorInfo {
  kernels::DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets relative to the start of the data section
  size_t end = 0;
};

// Parses and validates a header. `data_size` is the size of the data section.
// Throws std::runtime_error("<source>: ...") naming the tensor at fault.
std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& header_json,
                                                          size_t data_size,
                                                          const std::string& source);

// One or more .safetensors files (model.safetensors, or the shards listed in
// model.safetensors.index.json) seen as one name → tensor map.
class SafetensorsCheckpoint {
 public:
  // dir holds model.safetensors or model.safetensors.index.json.
  static SafetensorsCheckpoint open(const std::string& dir);
  // One file (tests, fuzzing).
  static SafetensorsCheckpoint open_file(const std::string& path);

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws "<file>: missing tensor <name>".
  kernels::HostTensor get(const std::string& name) const;
  // get() plus a shape check: "<file>: tensor <name> has shape [a, b], expected [c, d]".
  kernels::HostTensor get(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::string> names() const;
  // Sum of the tensors' bytes.
  size_t total_bytes() const;
  // The dtype most tensors are stored in.
  kernels::DType dominant_dtype() const;

 private:
  struct Entry {
    TensorInfo info;
    size_t file_index;
  };
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<size_t> data_start_;  // per file: offset of the data section
  std::map<std::string, Entry> tensors_;
};

}  // namespace lmserve::engine
