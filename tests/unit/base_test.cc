#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/base/file_util.h"
#include "gtest/gtest.h"

namespace vlmd {
namespace {

class RootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vlmd_roots_XXXXXX";
    dir_ = mkdtemp(tmpl);
    ASSERT_TRUE(MakeDirs(dir_ + "/allowed/sub").ok());
    ASSERT_TRUE(MakeDirs(dir_ + "/secret").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/allowed/sub/a.png", "x").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/secret/s.png", "y").ok());
    ASSERT_EQ(symlink((dir_ + "/secret/s.png").c_str(), (dir_ + "/allowed/link.png").c_str()), 0);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(RootsTest, AcceptsPathUnderRoot) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/sub/../sub/a.png", {dir_ + "/allowed"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, dir_ + "/allowed/sub/a.png");
}

TEST_F(RootsTest, RejectsDotDotEscape) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/../secret/s.png", {dir_ + "/allowed"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RootsTest, RejectsSymlinkEscape) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/link.png", {dir_ + "/allowed"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RootsTest, RejectsPrefixSibling) {
  ASSERT_TRUE(MakeDirs(dir_ + "/allowed2").ok());
  auto r = ResolveUnderRoots(dir_ + "/allowed2", {dir_ + "/allowed"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RootsTest, NewOutputDirUnderRoot) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/new/out", {dir_ + "/allowed"}, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, dir_ + "/allowed/new/out");
  auto bad = ResolveUnderRoots(dir_ + "/allowed/new/../../secret", {dir_ + "/allowed"}, false);
  EXPECT_FALSE(bad.ok());
}

TEST_F(RootsTest, EmptyRootsDenyAll) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/sub/a.png", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace vlmd
