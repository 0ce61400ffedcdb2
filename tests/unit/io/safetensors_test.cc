#include <unistd.h>

#include <cstring>
#include <string>

#include "core/base/file_util.h"
#include "core/io/safetensors.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vlmd_st_XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Writes a raw file: 8-byte length + header + data.
  std::string Raw(const std::string& name, const std::string& header, const std::string& data) {
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, bytes + header + data).ok());
    return path;
  }
  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripWithMetadata) {
  std::map<std::string, OwnedTensor> tensors;
  float values[6] = {1, 2, 3, 4, 5, 6};
  tensors["b.weight"] = {DType::kF32, {2, 3}, std::string(reinterpret_cast<char*>(values), 24)};
  tensors["a.ids"] = {DType::kI64, {2}, std::string(16, '\x01')};
  ASSERT_TRUE(WriteSafetensors(dir_ + "/m.safetensors", tensors, {{"format", "pt"}}).ok());
  auto file = SafetensorsFile::Open(dir_ + "/m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  const TensorView* w = (*file)->Find("b.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kF32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(static_cast<const float*>(w->data)[5], 6.0f);
  EXPECT_EQ((*file)->Find("a.ids")->nbytes, 16u);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST_F(SafetensorsTest, RejectsSizeMismatchNamingTensor) {
  std::string p = Raw("bad.safetensors",
                      R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
                      std::string(12, '\0'));
  auto file = SafetensorsFile::Open(p);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(std::string(file.status().message()).find("'w'"), std::string::npos);
  EXPECT_NE(std::string(file.status().message()).find("needs 16"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsOutOfBoundsOverlapAndHoles) {
  auto msg = [&](const std::string& header, size_t data) {
    auto f = SafetensorsFile::Open(Raw("x.safetensors", header, std::string(data, '\0')));
    return f.ok() ? std::string("ok") : std::string(f.status().message());
  };
  EXPECT_NE(msg(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4).find("out of bounds"),
            std::string::npos);
  EXPECT_NE(msg(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6).find("overlaps"),
            std::string::npos);
  EXPECT_NE(msg(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4).find("gap"),
            std::string::npos);
  EXPECT_NE(msg(R"({"a":{"dtype":"X9","shape":[2],"data_offsets":[0,2]}})", 2).find("dtype"),
            std::string::npos);
  EXPECT_NE(msg(R"({"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}})", 2).find("negative"),
            std::string::npos);
  EXPECT_NE(msg("not json", 0).find("JSON"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsHugeHeaderLength) {
  std::string bytes(8, '\xff');
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/h.safetensors", bytes + "{}").ok());
  auto f = SafetensorsFile::Open(dir_ + "/h.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(std::string(f.status().message()).find("exceeds"), std::string::npos);
}

// Found by tests/fuzz/safetensors_fuzzer.cc: shape [2^61] of F64 needs 2^64 bytes, which
// wrapped to 0, so an empty data section "held" a 2^61-element tensor (an out-of-bounds read
// for whoever turns it into a tensor). Dimensions past 2^62 after a zero dimension went
// negative as int64.
TEST_F(SafetensorsTest, RejectsShapesWhoseByteCountOverflows) {
  for (const char* header :
       {R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})",
        R"({"a":{"dtype":"I32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})",
        R"({"a":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}})"}) {
    auto file = SafetensorsFile::Open(Raw("overflow.safetensors", header, ""));
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_NE(std::string(file.status().message()).find("overflows"), std::string::npos)
        << file.status();
  }
}

TEST_F(SafetensorsTest, ShardedCheckpointThroughIndex) {
  std::map<std::string, OwnedTensor> a, b;
  a["x"] = {DType::kU8, {3}, "abc"};
  b["y"] = {DType::kU8, {2}, "de"};
  ASSERT_TRUE(WriteSafetensors(dir_ + "/model-00001-of-00002.safetensors", a).ok());
  ASSERT_TRUE(WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", b).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/model.safetensors.index.json",
                              R"({"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors",)"
                              R"("y":"model-00002-of-00002.safetensors"}})").ok());
  auto ckpt = Checkpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->Names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(std::memcmp((*ckpt)->Find("y")->data, "de", 2), 0);
}

TEST_F(SafetensorsTest, WriterEnforcesOrderAndSizes) {
  auto w = SafetensorsWriter::Create(dir_ + "/w.safetensors",
                                     {{"a", DType::kF32, {2}}, {"b", DType::kU8, {1}}});
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)->Write("b", "x", 1).ok());
  EXPECT_FALSE((*w)->Write("a", "1234", 4).ok());
  EXPECT_TRUE((*w)->Write("a", "12345678", 8).ok());
  EXPECT_FALSE((*w)->Finish().ok());  // b missing
}

}  // namespace
}  // namespace vlmd
