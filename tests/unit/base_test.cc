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

// Found by tests/fuzz/paths_fuzzer.cc: a dangling symlink under the root was taken for a
// missing component, so an output path "through" it was accepted, and creating it would have
// written wherever the link points.
TEST_F(RootsTest, DanglingSymlinkOutputIsRefused) {
  ASSERT_EQ(symlink((dir_ + "/secret/new").c_str(), (dir_ + "/allowed/dangling").c_str()), 0);
  for (const char* tail : {"/allowed/dangling", "/allowed/dangling/sub/out"}) {
    auto r = ResolveUnderRoots(dir_ + tail, {dir_ + "/allowed"}, false);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << tail << " " << r.status();
  }
}

// Found by the paths fuzzer: empty components of a new output path were kept ("new//out").
TEST_F(RootsTest, NewOutputPathIsCanonical) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/new//out/", {dir_ + "/allowed"}, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, dir_ + "/allowed/new/out");
}

// A missing file outside the roots is PERMISSION_DENIED like an existing one: NOT_FOUND there
// would tell a client which files exist outside the roots.
TEST_F(RootsTest, NoExistenceOracleOutsideTheRoots) {
  auto existing = ResolveUnderRoots(dir_ + "/secret/s.png", {dir_ + "/allowed"});
  auto missing = ResolveUnderRoots(dir_ + "/secret/nothing.png", {dir_ + "/allowed"});
  EXPECT_EQ(existing.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kPermissionDenied);
  auto under = ResolveUnderRoots(dir_ + "/allowed/nothing.png", {dir_ + "/allowed"});
  EXPECT_EQ(under.status().code(), absl::StatusCode::kNotFound);
}

// The error names the path the client sent, never where a symlink leads.
TEST_F(RootsTest, MessageDoesNotRevealTheSymlinkTarget) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/link.png", {dir_ + "/allowed"});
  std::string message(r.status().message());
  EXPECT_NE(message.find("link.png"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << message;
}

TEST_F(RootsTest, EmptyRootsDenyAll) {
  auto r = ResolveUnderRoots(dir_ + "/allowed/sub/a.png", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace vlmd
