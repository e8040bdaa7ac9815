// Reading .safetensors files: a little-endian u64 header length, a JSON header of
// {name: {dtype, shape, data_offsets}}, then the tensor bytes. Files are memory-mapped;
// tensors are views into the mapping.
//
// Every check a hostile file could defeat is made before any tensor byte is read:
// header length within the file, JSON well-formed, known dtype, shape × dtype size ==
// offset range, ranges inside the data section and not overlapping.
#pragma once

#include <cstdio>
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
// The same, also accepting tensors of dtypes lmserve does not compute with (I64, U8,
// F64, F8_*, ...; e.g. position_ids buffers): they are validated (size, range, overlap)
// and listed in `unsupported` as name → dtype instead of being returned.
std::map<std::string, TensorInfo> parse_safetensors_header(
    const std::string& header_json, size_t data_size, const std::string& source,
    std::map<std::string, std::string>* unsupported);

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
  std::string source_;  // the file or index named in "missing tensor" errors
  std::map<std::string, std::pair<std::string, size_t>> unsupported_;  // name → (dtype, file)
  // Per file: an aligned copy of the data section when the header length left it
  // misaligned (files from writers that do not pad the header); null otherwise.
  std::vector<std::shared_ptr<const std::vector<float>>> realigned_;
};

// Streams a .safetensors file (the random-model tool, tests): the header first, then
// each tensor's bytes in the order given. The header is padded to 8 bytes, and tensors
// are laid out in order, so every tensor stays aligned to its element size.
class SafetensorsWriter {
 public:
  struct Tensor {
    std::string name;
    kernels::DType dtype = kernels::DType::F32;
    std::vector<int64_t> shape;
  };
  // Throws "<path>: ..." when the file cannot be written.
  SafetensorsWriter(const std::string& path, const std::vector<Tensor>& tensors,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  // Appends data bytes (any split of the tensors' bytes, in order).
  void append(const void* data, size_t bytes);
  // Flushes and closes; throws unless exactly the declared bytes were appended.
  void finish();

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  size_t expected_ = 0;
  size_t written_ = 0;
};

}  // namespace lmserve::engine
