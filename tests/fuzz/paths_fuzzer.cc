// The allowed-roots check that guards every path a client names (images, adapters, data sets,
// output directories) on arbitrary paths, in a small tree with symlinks that escape the root.
// Property: a path is accepted only when its canonical form lies under the root, and the
// returned path is that canonical form (no "..", ".", "//" or symlink in it).
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>

#include "core/base/file_util.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// <scratch>/root/{a/b/, img.png, up -> .., abs -> /etc, loop -> loop, inner -> a/b,
//                 a/escape -> ../outside/secret, dangling -> ../outside/nothing}
// <scratch>/outside/secret
std::string MakeTree() {
  const std::string& s = vlmd::fuzz::ScratchDir();
  std::string root = s + "/root";
  for (const std::string& d : {root, root + "/a", root + "/a/b", s + "/outside"}) {
    mkdir(d.c_str(), 0700);
  }
  vlmd::fuzz::WriteScratch("root/img.png", "x");
  vlmd::fuzz::WriteScratch("outside/secret", "x");
  symlink("..", (root + "/up").c_str());
  symlink("/etc", (root + "/abs").c_str());
  symlink("loop", (root + "/loop").c_str());
  symlink("a/b", (root + "/inner").c_str());
  symlink((s + "/outside/secret").c_str(), (root + "/a/escape").c_str());
  symlink((s + "/outside/nothing").c_str(), (root + "/dangling").c_str());
  return root;
}

bool Under(const std::string& path, const std::string& root) {
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlmd;
  static const std::string root = MakeTree();
  static const std::string canonical_root = [] {
    char buf[PATH_MAX];
    FUZZ_CHECK(realpath(root.c_str(), buf) != nullptr);
    return std::string(buf);
  }();
  if (size < 1 || size > 512) return 0;
  // First byte: must_exist and whether the path is relative to the root or absolute as given.
  const bool must_exist = data[0] & 1;
  std::string rest(fuzz::AsView(data + 1, size - 1));
  std::string path = (data[0] & 2) ? rest : root + "/" + rest;
  StatusOr<std::string> r = ResolveUnderRoots(path, {root}, must_exist);
  if (!r.ok()) {
    auto code = r.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kPermissionDenied || code == absl::StatusCode::kNotFound ||
               code == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(Under(*r, canonical_root));
  FUZZ_CHECK(r->find("/../") == std::string::npos && r->find("/./") == std::string::npos);
  FUZZ_CHECK(r->find("//") == std::string::npos);
  FUZZ_CHECK(r->size() < 3 || r->compare(r->size() - 3, 3, "/..") != 0);
  // No component of the result is a symlink (a dangling one included: creating the output
  // there would write through it, outside the root).
  for (size_t slash = r->find('/', 1);; slash = r->find('/', slash + 1)) {
    std::string prefix = r->substr(0, slash);
    struct stat st;
    if (lstat(prefix.c_str(), &st) != 0) break;
    FUZZ_CHECK(!S_ISLNK(st.st_mode));
    if (slash == std::string::npos) break;
  }
  return 0;
}
