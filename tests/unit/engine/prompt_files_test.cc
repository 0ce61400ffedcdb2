// LoadImageBytes on the files a client may name: only regular files under the roots, read no
// further than the byte limit.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/engine/prompt.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

class ImageFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vlmd_imgfiles_XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/a.png") << "12345678";
    policy_.allowed_roots = std::vector<std::string>{dir_, "/dev"};
    policy_.decode.max_bytes = 100;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  StatusOr<std::string> Load(const std::string& path) {
    ImageSource src;
    src.path = path;
    return LoadImageBytes(src, 0, policy_);
  }
  std::string dir_;
  ImagePolicy policy_;
};

TEST_F(ImageFilesTest, ReadsARegularFile) {
  auto r = Load(dir_ + "/a.png");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "12345678");
}

// A FIFO under the roots used to block the request thread in open() forever.
TEST_F(ImageFilesTest, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(mkfifo((dir_ + "/pipe.png").c_str(), 0600), 0);
  auto r = Load(dir_ + "/pipe.png");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("not a regular file"), std::string::npos);
}

// /dev/zero (size 0 to ftell) used to pass the size check and be read until memory ran out.
TEST_F(ImageFilesTest, DeviceIsRefused) {
  auto r = Load("/dev/zero");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("not a regular file"), std::string::npos);
}

TEST_F(ImageFilesTest, DirectoryAndOversizedFileAreRefused) {
  EXPECT_EQ(Load(dir_).status().code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir_ + "/big.png") << std::string(101, 'x');
  auto r = Load(dir_ + "/big.png");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("over the limit of 100"), std::string::npos);
  EXPECT_EQ(Load(dir_ + "/none.png").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vlmd
