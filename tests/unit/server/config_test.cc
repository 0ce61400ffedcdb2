// Parsing and validation of `vlmd serve` configuration (YAML + overrides + flags).
#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "server/serve_flags.h"

namespace vlmd::server {
namespace {

constexpr char kFull[] = R"(
listen: 0.0.0.0:6000
models:
  qwen:
    path: /models/qwen
    device: cuda:1
    dtype: bfloat16
  tiny: /models/tiny
adapters:
  latex:
    path: /adapters/latex
    model: tiny
limits:
  max_request_bytes: 1048576
  max_concurrent_requests: 8
  max_image_bytes: 1000
  max_image_pixels: 2000
  max_images: 3
  max_pixels: 50176
  max_prompt_tokens: 77
  max_new_tokens: 9
  max_running: 2
  queue_size: 5
  kv_cache_tokens: 4096
  max_prefill_tokens: 512
tls:
  cert: /tls/server.pem
  key: /tls/server.key
  client_ca: /tls/ca.pem
auth:
  tokens:
    - {name: ci, token: aaaaaaaaaaaaaaaaaaaa, role: infer}
    - {name: ops, token: bbbbbbbbbbbbbbbbbbbb, role: admin}
metrics:
  listen: 127.0.0.1:9100
allowed_roots: [/data, /models]
state_dir: /var/lib/vlmd
log_level: debug
shutdown_grace_seconds: 2.5
tokenizer: /tok/tokenizer.json
)";

TEST(ServeConfig, ReadsEveryKey) {
  StatusOr<ServeConfig> c = ParseServeConfig(kFull, "vlmd.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "0.0.0.0:6000");
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].name, "qwen");  // file order is kept: the first is the default
  EXPECT_EQ(c->models[0].device, "cuda:1");
  EXPECT_EQ(c->models[0].dtype, "bfloat16");
  EXPECT_EQ(c->models[1].name, "tiny");
  EXPECT_EQ(c->models[1].path, "/models/tiny");
  EXPECT_EQ(c->models[1].device, "cpu");
  ASSERT_EQ(c->adapters.size(), 1u);
  EXPECT_EQ(c->adapters[0].model, "tiny");
  EXPECT_EQ(c->limits.max_request_bytes, 1048576);
  EXPECT_EQ(c->limits.max_concurrent_requests, 8);
  EXPECT_EQ(c->limits.max_prompt_tokens, 77);
  EXPECT_EQ(c->limits.queue_size, 5);
  EXPECT_EQ(c->tls.client_ca, "/tls/ca.pem");
  ASSERT_EQ(c->auth.tokens.size(), 2u);
  EXPECT_EQ(c->auth.tokens[1].role, Role::kAdmin);
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9100");
  EXPECT_EQ(c->allowed_roots, (std::vector<std::string>{"/data", "/models"}));
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_DOUBLE_EQ(c->shutdown_grace_seconds, 2.5);
  EXPECT_TRUE(ValidateServeConfig(*c).ok()) << ValidateServeConfig(*c);
}

TEST(ServeConfig, DefaultsWhenEmpty) {
  StatusOr<ServeConfig> c = ParseServeConfig("", "empty.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:50051");
  EXPECT_EQ(c->limits.max_running, 16);
  EXPECT_TRUE(c->auth.tokens.empty());
  Status v = ValidateServeConfig(*c);
  EXPECT_EQ(v.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.message().find("no models"), std::string::npos) << v;
}

TEST(ServeConfig, UnknownKeyIsNamedWithItsLine) {
  StatusOr<ServeConfig> c =
      ParseServeConfig("models:\n  m: /x\nlimits:\n  max_runing: 3\n", "vlmd.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("vlmd.yaml:4"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("unknown key 'limits.max_runing'"), std::string::npos)
      << c.status();
}

TEST(ServeConfig, UnknownKeysEverywhere) {
  for (const char* text : {"bogus: 1\n", "models:\n  m:\n    path: /x\n    gpu: 1\n",
                           "tls:\n  certificate: x\n", "auth:\n  tokens:\n    - {tok: x}\n",
                           "metrics:\n  port: 1\n", "adapters:\n  a: {path: /a, rank: 4}\n"}) {
    StatusOr<ServeConfig> c = ParseServeConfig(text, "f.yaml", {});
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find("unknown key"), std::string::npos) << c.status();
  }
}

TEST(ServeConfig, TypeErrorsNameTheKey) {
  StatusOr<ServeConfig> c = ParseServeConfig("limits:\n  max_running: lots\n", "f.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'limits.max_running' must be an integer, got 'lots'"),
            std::string::npos)
      << c.status();
  c = ParseServeConfig("allowed_roots: /data\n", "f.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'allowed_roots' must be a list"), std::string::npos)
      << c.status();
  c = ParseServeConfig("limits: [1, 2]\n", "f.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'limits' must be a mapping"), std::string::npos);
  c = ParseServeConfig("auth:\n  tokens:\n    - {token: aaaaaaaaaaaaaaaaaa, role: root}\n",
                       "f.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("must be 'infer' or 'admin'"), std::string::npos);
}

TEST(ServeConfig, BadYamlNamesTheLine) {
  StatusOr<ServeConfig> c = ParseServeConfig("models:\n  m: [unclosed\n", "bad.yaml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad.yaml:"), std::string::npos) << c.status();
}

TEST(ServeConfig, OverridesApplyBeforeReading) {
  StatusOr<ServeConfig> c =
      ParseServeConfig(kFull, "vlmd.yaml",
                       {"limits.max_running=1", "listen=127.0.0.1:0", "allowed_roots=[/a, /b, /c]",
                        "models.extra.path=/models/extra", "metrics.listen="});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->limits.max_running, 1);
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->allowed_roots.size(), 3u);
  ASSERT_EQ(c->models.size(), 3u);
  EXPECT_EQ(c->models[2].path, "/models/extra");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9090");  // an empty value resets to the default
  StatusOr<ServeConfig> bad = ParseServeConfig(kFull, "vlmd.yaml", {"limits.max_runing=1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("limits.max_runing"), std::string::npos);
  EXPECT_FALSE(ParseServeConfig("", "x", {"no-equals-sign"}).ok());
  EXPECT_FALSE(ParseServeConfig("listen: a\n", "x", {"listen.port=3"}).ok());
}

TEST(ServeConfig, ValidationRules) {
  auto invalid = [](const std::string& extra, const std::string& needle) {
    StatusOr<ServeConfig> c = ParseServeConfig("models: {m: /x}\n" + extra, "f.yaml", {});
    ASSERT_TRUE(c.ok()) << c.status();
    Status s = ValidateServeConfig(*c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << extra;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s;
  };
  invalid("limits: {max_running: 0}\n", "limits.max_running must be positive");
  invalid("tls: {cert: /c}\n", "tls.cert and tls.key");
  invalid("tls: {client_ca: /ca}\n", "needs tls.cert");
  invalid("adapters: {a: {path: /a, model: nope}}\n", "'nope', which is not a served model");
  invalid("adapters: {a: {model: m}}\n", "adapters.a.path is not set");
  invalid("auth: {tokens: [{name: t, token: short}]}\n", "shorter than 16");
  invalid(
      "auth: {tokens: [{name: t, token: aaaaaaaaaaaaaaaaaa}, {name: t, token: "
      "bbbbbbbbbbbbbbbbbbbb}]}\n",
      "two tokens are named 't'");
  invalid("log_level: loud\n", "log_level must be");
  invalid("shutdown_grace_seconds: -1\n", "shutdown_grace_seconds");
}

TEST(ServeConfig, TokensFile) {
  StatusOr<std::vector<TokenEntry>> t = ParseTokensFile(
      "tokens:\n  - {name: a, token: cccccccccccccccccccc, role: admin}\n  - {token: "
      "dddddddddddddddddddd}\n",
      "tokens.yaml");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].role, Role::kAdmin);
  EXPECT_EQ((*t)[1].role, Role::kInfer);
  EXPECT_EQ((*t)[1].name, "tokens[1]");  // unnamed tokens are named by position
  EXPECT_FALSE(ParseTokensFile("tokens: {}\nother: 1\n", "tokens.yaml").ok());
}

TEST(ServeConfig, LoadMergesTokensFileAndFlags) {
  std::string dir = ::testing::TempDir();
  std::string tokens_path = dir + "/vlmd_tokens.yaml";
  std::string config_path = dir + "/vlmd_config.yaml";
  std::ofstream(tokens_path) << "tokens:\n  - {name: file, token: eeeeeeeeeeeeeeeeeeee}\n";
  std::ofstream(config_path) << "models: {m: /x}\nauth:\n  tokens_file: " << tokens_path
                             << "\n  tokens: [{name: inline, token: ffffffffffffffffffff}]\n";
  ServeFlags flags;
  flags.config_path = config_path;
  flags.sets = {"limits.queue_size=3"};
  flags.models = {"second=/y", "m=/z"};
  flags.listen = "127.0.0.1:0";
  flags.no_metrics = true;
  flags.allowed_roots = {"/r"};
  StatusOr<ServeConfig> c = BuildServeConfig(flags, "/default/tokenizer.json");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->auth.tokens.size(), 2u);
  EXPECT_EQ(c->auth.tokens[1].name, "file");
  EXPECT_EQ(c->limits.queue_size, 3);
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].path, "/z");  // --model replaces the path of a known name
  EXPECT_EQ(c->models[1].name, "second");
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_TRUE(c->metrics_listen.empty());
  EXPECT_EQ(c->allowed_roots, std::vector<std::string>{"/r"});
  EXPECT_EQ(c->tokenizer, "/default/tokenizer.json");
  flags.models = {"broken"};
  EXPECT_FALSE(BuildServeConfig(flags, "").ok());
  flags.models.clear();
  flags.config_path = dir + "/missing.yaml";
  EXPECT_EQ(BuildServeConfig(flags, "").status().code(), absl::StatusCode::kNotFound);
}

TEST(ServeConfig, ToInferenceConfig) {
  StatusOr<ServeConfig> c = ParseServeConfig(kFull, "vlmd.yaml", {});
  ASSERT_TRUE(c.ok());
  api::InferenceConfig ic = ToInferenceConfig(*c);
  ASSERT_EQ(ic.models.size(), 2u);
  EXPECT_EQ(ic.models[0].device, "cuda:1");
  EXPECT_EQ(ic.limits.max_running, 2);
  EXPECT_EQ(ic.limits.max_waiting, 5);
  EXPECT_EQ(ic.limits.max_prompt_tokens, 77);
  EXPECT_EQ(ic.limits.max_new_tokens, 9);
  EXPECT_EQ(ic.limits.kv_cache_tokens, 4096);
  EXPECT_EQ(ic.limits.max_prefill_tokens, 512);
  ASSERT_TRUE(ic.images.allowed_roots.has_value());
  EXPECT_EQ(ic.images.allowed_roots->size(), 2u);
  EXPECT_EQ(ic.images.decode.max_bytes, 1000);
  EXPECT_EQ(ic.images.decode.max_pixels, 2000);
  EXPECT_EQ(ic.images.max_images, 3);
  EXPECT_EQ(ic.images.max_pixels_limit, 50176);
  EXPECT_EQ(ic.tokenizer_fallback, "/tok/tokenizer.json");
  // No roots configured still means "roots enforced" (nothing allowed), never "any path".
  StatusOr<ServeConfig> bare = ParseServeConfig("models: {m: /x}\n", "f", {});
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(ToInferenceConfig(*bare).images.allowed_roots.has_value());
}

}  // namespace
}  // namespace vlmd::server

namespace vlmd::server {
namespace {

// The documented sample config must stay in step with the parser: every key it shows exists.
TEST(ServeConfig, SampleConfigParsesAndValidates) {
  std::ifstream in(VLMD_SOURCE_DIR "/deploy/vlmd.yaml");
  ASSERT_TRUE(in.good());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<ServeConfig> c = ParseServeConfig(text, "deploy/vlmd.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateServeConfig(*c).ok()) << ValidateServeConfig(*c);
  EXPECT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->adapters.size(), 1u);
  EXPECT_EQ(c->auth.tokens.size(), 1u);
  EXPECT_FALSE(c->tls.client_ca.empty());
  EXPECT_EQ(c->training.gpus, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(c->training.data_root.empty());
}

TEST(ServeConfig, TrainingKeys) {
  StatusOr<ServeConfig> c = ParseServeConfig(
      "models: {m: /x}\nstate_dir: /s\nallowed_roots: [/data]\ntokenizer: /t.json\n"
      "training:\n  gpus: [2, 3]\n  cpu_slots: 0\n  data_root: /data/sets\n"
      "  max_attempts: 5\n",
      "vlmd.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(ValidateServeConfig(*c).ok());
  api::JobServiceConfig j = ToJobServiceConfig(*c);
  EXPECT_EQ(j.state_dir, "/s");
  EXPECT_EQ(j.training_gpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(j.cpu_slots, 0);
  EXPECT_EQ(j.data_root, "/data/sets");
  EXPECT_EQ(j.max_attempts, 5);
  EXPECT_EQ(j.allowed_roots, std::vector<std::string>{"/data"});
  EXPECT_EQ(j.tokenizer_fallback, "/t.json");
  ServeConfig defaults;
  EXPECT_TRUE(defaults.training.gpus.empty());
  EXPECT_EQ(defaults.training.cpu_slots, 1);
  EXPECT_EQ(defaults.training.max_attempts, 3);
  // --set works for the new keys like for the others.
  c = ParseServeConfig("models: {m: /x}\n", "vlmd.yaml", {"training.gpus=[0]"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->training.gpus, std::vector<int>{0});
}

TEST(ServeConfig, TrainingKeysAreChecked) {
  auto error = [](const std::string& yaml) {
    StatusOr<ServeConfig> c = ParseServeConfig("models: {m: /x}\n" + yaml, "vlmd.yaml", {});
    if (!c.ok()) return std::string(c.status().message());
    return std::string(ValidateServeConfig(*c).message());
  };
  EXPECT_NE(error("training: {gpus: [1, 1]}").find("training.gpus"), std::string::npos);
  EXPECT_NE(error("training: {gpus: [a]}").find("'training.gpus' must be a list of integers"),
            std::string::npos);
  EXPECT_NE(error("training: {cpu_slots: -1}").find("training.cpu_slots"), std::string::npos);
  EXPECT_NE(error("training: {max_attempts: 0}").find("training.max_attempts"), std::string::npos);
  EXPECT_NE(error("training: {gpu: [1]}").find("unknown key 'training.gpu'"), std::string::npos);
}

}  // namespace
}  // namespace vlmd::server
