// .safetensors reading: every corruption of the header or file gives its own one-line
// error naming the file (and the tensor), sharded checkpoints, and the writer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/model/safetensors.h"

namespace lmserve::engine {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lmserve_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file with the given 8-byte length field, header text and `data_bytes` data bytes.
  std::string write_raw(const std::string& name, uint64_t header_len, const std::string& header,
                        size_t data_bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(header_len >> (8 * i)));
    out << header;
    for (size_t i = 0; i < data_bytes; ++i) out.put(static_cast<char>(i));
    return path;
  }
  std::string write_file(const std::string& header, size_t data_bytes, const std::string& name = "x.safetensors") {
    return write_raw(name, header.size(), header, data_bytes);
  }
  // The error open_file() throws, or "" when it opens.
  std::string open_error(const std::string& path) {
    try {
      SafetensorsCheckpoint::open_file(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

const char* kGood =
    R"({"__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]}})";

TEST_F(SafetensorsTest, ReadsValidFile) {
  // 8-byte aligned header, so F32 data starts aligned.
  std::string header = kGood;
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = write_file(header, 32);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_file(path);
  EXPECT_TRUE(ckpt.contains("a"));
  EXPECT_FALSE(ckpt.contains("__metadata__"));
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ckpt.total_bytes(), 32u);
  EXPECT_EQ(ckpt.dominant_dtype(), kernels::DType::F32);
  const kernels::HostTensor a = ckpt.get("a", {2, 3});
  EXPECT_EQ(a.dtype, kernels::DType::F32);
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(static_cast<const uint8_t*>(a.data)[5], 5);  // data byte i holds i
  const kernels::HostTensor b = ckpt.get("b");
  EXPECT_EQ(static_cast<const uint8_t*>(b.data)[0], 24);
  EXPECT_EQ(b.dtype, kernels::DType::F16);
}

TEST_F(SafetensorsTest, MissingAndMisshapedTensor) {
  std::string header = kGood;
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = write_file(header, 32);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_file(path);
  try {
    ckpt.get("nope");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": missing tensor nope");
  }
  try {
    ckpt.get("a", {3, 2});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor a has shape [2, 3], expected [3, 2]");
  }
}

struct Corruption {
  const char* what;
  std::string header;
  size_t data_bytes;
  std::string expected;  // the message after "<path>: "
};

TEST_F(SafetensorsTest, EachHeaderCorruptionHasItsOwnError) {
  const std::vector<Corruption> cases = {
      {"non-JSON", "{\"a\": {\"dtype\": ", 16, "header is not valid JSON"},
      {"not an object", "[1, 2, 3]", 16, "header is not a JSON object"},
      {"entry not object", R"({"a": 5})", 16, "tensor a: entry is not a JSON object"},
      {"missing dtype", R"({"a": {"shape": [4], "data_offsets": [0, 16]}})", 16, "tensor a: missing 'dtype'"},
      {"missing shape", R"({"a": {"dtype": "F32", "data_offsets": [0, 16]}})", 16, "tensor a: missing 'shape'"},
      {"missing offsets", R"({"a": {"dtype": "F32", "shape": [4]}})", 16, "tensor a: missing 'data_offsets'"},
      {"unknown dtype", R"({"a": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}})", 16,
       "tensor a: unknown dtype 'Q4'"},
      {"negative dim", R"({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", 16,
       "tensor a: shape has a negative dimension"},
      {"size mismatch", R"({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}})", 24,
       "tensor a: shape [5] of F32 needs 20 bytes but data_offsets span 16"},
      {"outside data", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", 16,
       "tensor a: data_offsets [8, 24] outside the data section (16 bytes)"},
      {"reversed offsets", R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 16,
       "tensor a: data_offsets end before they begin"},
      {"negative offset", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}})", 16,
       "tensor a: 'data_offsets' is not a pair of non-negative integers"},
      {"overlap",
       R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
       16, "tensor b: data overlaps tensor a"},
      {"huge shape", R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})",
       16, "tensor a: shape is too large"},
      {"bad metadata", R"({"__metadata__": 3})", 0, "__metadata__ is not a JSON object"},
  };
  for (const Corruption& c : cases) {
    const std::string path = write_file(c.header, c.data_bytes);
    EXPECT_EQ(open_error(path), path + ": " + c.expected) << c.what;
    // The header parser alone says the same.
    try {
      parse_safetensors_header(c.header, c.data_bytes, "src");
      ADD_FAILURE() << c.what << ": parse_safetensors_header did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "src: " + c.expected) << c.what;
    }
  }
}

TEST_F(SafetensorsTest, FileLevelCorruptions) {
  const std::string tiny = (dir_ / "tiny.safetensors").string();
  std::ofstream(tiny) << "abc";
  EXPECT_EQ(open_error(tiny), tiny + ": file too small to be safetensors (3 bytes)");

  const std::string absurd = write_raw("absurd.safetensors", 1ull << 60, "{}", 0);
  EXPECT_EQ(open_error(absurd),
            absurd + ": header length 1152921504606846976 is absurd (limit 100000000)");

  const std::string beyond = write_raw("beyond.safetensors", 1000, "{}", 0);
  EXPECT_EQ(open_error(beyond), beyond + ": header length 1000 exceeds the file size 10 (truncated file?)");

  // A valid file cut short inside its data section.
  std::string header = kGood;
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string truncated = write_file(header, 20, "truncated.safetensors");
  EXPECT_EQ(open_error(truncated),
            truncated + ": tensor a: data_offsets [0, 24] outside the data section (20 bytes)");

  const std::string missing = (dir_ / "missing.safetensors").string();
  EXPECT_EQ(open_error(missing), missing + ": No such file or directory");
  EXPECT_EQ(open_error(dir_.string()), dir_.string() + ": not a regular file");

  // An F32 tensor at an odd offset within the data section cannot be read in place.
  const std::string misaligned = write_file(
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}})", 8, "mis.safetensors");
  EXPECT_EQ(open_error(misaligned), misaligned + ": tensor a: data is not aligned to its element size");
}

TEST_F(SafetensorsTest, UnpaddedHeaderIsRealigned) {
  // A header whose length leaves the data section at an odd address (writers that do
  // not pad): the tensors are still readable, from an aligned copy.
  std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  if ((8 + header.size()) % 4 == 0) header += " ";
  const std::string path = write_raw("unpadded.safetensors", header.size(), header, 0);
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    const float v[2] = {1.5f, -3.0f};
    out.write(reinterpret_cast<const char*>(v), sizeof v);
  }
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_file(path);
  const kernels::HostTensor a = ckpt.get("a", {2});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % alignof(float), 0u);
  EXPECT_EQ(static_cast<const float*>(a.data)[0], 1.5f);
  EXPECT_EQ(static_cast<const float*>(a.data)[1], -3.0f);
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsSkippedUntilAskedFor) {
  std::string header =
      R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
          "w": {"dtype": "BF16", "shape": [4], "data_offsets": [16, 24]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = write_file(header, 24);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_file(path);
  EXPECT_FALSE(ckpt.contains("ids"));
  EXPECT_EQ(ckpt.dominant_dtype(), kernels::DType::BF16);
  try {
    ckpt.get("ids");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor ids: unsupported dtype I64 (lmserve reads F32, F16, BF16)");
  }
  // The three-argument parser rejects it outright.
  EXPECT_THROW(parse_safetensors_header(header, 24, "src"), std::runtime_error);
}

TEST_F(SafetensorsTest, WriterRoundTripAndShardedIndex) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {kernels::f32_to_f16(0.5f), kernels::f32_to_f16(-2.0f)};
  {
    SafetensorsWriter w((dir_ / "model-00001-of-00002.safetensors").string(),
                        {{"x.weight", kernels::DType::F32, {2, 3}}}, {{"format", "pt"}});
    w.append(a.data(), 8);  // any split of the bytes
    w.append(a.data() + 2, 16);
    w.finish();
  }
  {
    SafetensorsWriter w((dir_ / "model-00002-of-00002.safetensors").string(),
                        {{"y.weight", kernels::DType::F16, {2}}});
    w.append(b.data(), 4);
    w.finish();
  }
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"metadata": {"total_size": 28}, "weight_map": {
             "x.weight": "model-00001-of-00002.safetensors",
             "y.weight": "model-00002-of-00002.safetensors"}})";
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir_.string());
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"x.weight", "y.weight"}));
  EXPECT_EQ(ckpt.total_bytes(), 28u);
  const kernels::HostTensor x = ckpt.get("x.weight", {2, 3});
  EXPECT_EQ(std::memcmp(x.data, a.data(), 24), 0);
  const kernels::HostTensor y = ckpt.get("y.weight", {2});
  EXPECT_EQ(kernels::f16_to_f32(static_cast<const uint16_t*>(y.data)[1]), -2.0f);
  try {
    ckpt.get("z");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "model.safetensors.index.json").string() + ": missing tensor z");
  }

  // An index that puts a tensor in the wrong shard, or outside the folder.
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"x.weight": "model-00002-of-00002.safetensors",
                            "y.weight": "model-00002-of-00002.safetensors"}})";
  try {
    SafetensorsCheckpoint::open(dir_.string());
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor x.weight: listed in model-00002-of-00002.safetensors"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weight_map": {"x.weight": "../etc/passwd"}})";
  try {
    SafetensorsCheckpoint::open(dir_.string());
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid shard name"), std::string::npos) << e.what();
  }
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weight_map": 1})";
  EXPECT_THROW(SafetensorsCheckpoint::open(dir_.string()), std::runtime_error);
}

TEST_F(SafetensorsTest, WriterRejectsWrongByteCount) {
  SafetensorsWriter w((dir_ / "w.safetensors").string(), {{"x", kernels::DType::F32, {2}}});
  const float v[3] = {1, 2, 3};
  EXPECT_THROW(w.append(v, 12), std::runtime_error);
  w.append(v, 4);
  EXPECT_THROW(w.finish(), std::runtime_error);
}

TEST_F(SafetensorsTest, FolderWithoutWeights) {
  try {
    SafetensorsCheckpoint::open(dir_.string());
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), dir_.string() + ": no model.safetensors or model.safetensors.index.json");
  }
  EXPECT_THROW(SafetensorsCheckpoint::open((dir_ / "nope").string()), std::runtime_error);
}

TEST(SafetensorsFixtures, OpensEveryFixtureModel) {
  for (const char* name : {"gpt2-tiny", "gpt2-tiny-f16", "gpt2-tiny-bf16", "llama-tiny",
                           "llama-tiny-f16", "llama-tiny-bf16"}) {
    const SafetensorsCheckpoint ckpt =
        SafetensorsCheckpoint::open(std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name);
    const std::string n(name);
    const kernels::DType want = n.ends_with("-f16")    ? kernels::DType::F16
                                : n.ends_with("-bf16") ? kernels::DType::BF16
                                                       : kernels::DType::F32;
    EXPECT_EQ(ckpt.dominant_dtype(), want) << name;
    EXPECT_GT(ckpt.names().size(), 10u) << name;
  }
}

}  // namespace
}  // namespace lmserve::engine
