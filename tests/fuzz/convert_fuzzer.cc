// Request -> core conversion on arbitrary bytes parsed as a vlmd.v1.InferRequest (Debian has no
// libprotobuf-mutator, so the seeds are serialized requests and libFuzzer mutates their bytes):
// server::FromProto, the sampling parameter checks (ResolveSampling) and PreparePrompt with the
// real tokenizer, the chat template and image loading under an allowed root. Properties: every
// failure is a client error (never INTERNAL or a crash) and a prepared prompt's image tokens
// are in its ids.
#include <google/protobuf/stubs/logging.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/base/file_util.h"
#include "core/engine/prompt.h"
#include "core/engine/sampling.h"
#include "server/convert.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace vlmd;

struct Fixture {
  std::shared_ptr<const Tokenizer> tokenizer;
  ModelConfig config;
  PreprocessorConfig preprocessor;
  GenerationConfig generation;
  ImagePolicy policy;

  Fixture() {
    const char* env = std::getenv("VLMD_TOKENIZER");
    std::string path = env && *env ? env : VLMD_SOURCE_DIR "/third_party/tokenizer/tokenizer.json";
    auto t = Tokenizer::FromFile(path);
    FUZZ_CHECK(t.ok());
    tokenizer = *t;
    generation.eos_token_ids = config.eos_token_ids;
    std::string root = fuzz::ScratchDir() + "/root";
    mkdir(root.c_str(), 0700);
    std::string png = VLMD_SOURCE_DIR "/tests/fixtures/images/tiny_20x15.png";
    symlink(png.c_str(), (root + "/tiny.png").c_str());  // resolves outside: refused
    StatusOr<std::string> bytes = ReadFile(png);
    FUZZ_CHECK(bytes.ok());
    fuzz::WriteScratch("root/copy.png", *bytes);
    fuzz::WriteScratch("root/bad.png", "not an image");
    policy.allowed_roots = std::vector<std::string>{root};
    policy.decode.max_bytes = 1 << 20;
    policy.decode.max_pixels = 1 << 18;
    policy.max_images = 4;
    policy.max_pixels_limit = 28 * 28 * 64;
  }
};

bool IsClientError(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ||
         code == absl::StatusCode::kPermissionDenied;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in a string field makes protobuf log one line per parse: millions of lines.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture* fixture = new Fixture();
  if (size > 64 * 1024) return 0;
  v1::InferRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  StatusOr<api::InferRequest> request = server::FromProto(wire);
  if (!request.ok()) {
    FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(request->prompt.messages.size() == size_t(wire.messages_size()));
  StatusOr<SamplingParams> sampling =
      ResolveSampling(request->sampling, fixture->generation, /*max_new_tokens_limit=*/64);
  if (!sampling.ok()) FUZZ_CHECK(IsClientError(sampling.status().code()));
  PromptContext context{&fixture->config, &fixture->preprocessor, fixture->tokenizer.get()};
  StatusOr<PreparedPrompt> prompt = PreparePrompt(request->prompt, context, fixture->policy);
  if (!prompt.ok()) {
    if (!IsClientError(prompt.status().code())) {
      std::fprintf(stderr, "%s\n", prompt.status().ToString().c_str());
      FUZZ_CHECK(IsClientError(prompt.status().code()));
    }
    return 0;
  }
  int64_t image_ids =
      std::count(prompt->ids.begin(), prompt->ids.end(), fixture->config.image_token_id);
  FUZZ_CHECK(image_ids == prompt->image_tokens);
  FUZZ_CHECK(prompt->images.size() == request->prompt.images.size());
  // The response side: whatever the engine produced must serialize as valid proto3 strings.
  v1::InferResponse response;
  GenerationResult result;
  result.text = wire.messages_size() > 0 && wire.messages(0).content_size() > 0
                    ? wire.messages(0).content(0).text()
                    : "";
  server::ToProto(server::RequestNames{wire.request_id(), wire.model(), ""}, result, &response);
  std::string bytes;
  FUZZ_CHECK(response.SerializeToString(&bytes));
  v1::InferResponse back;
  FUZZ_CHECK(back.ParseFromString(bytes));
  return 0;
}
