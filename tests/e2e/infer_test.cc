// End to end: Infer and InferStream on the tiny model through a real `vlmd serve`, checked
// against each other, against `vlmd generate`, and under concurrency.
#include <gtest/gtest.h>

#include <thread>

#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;

class InferE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    image_ = dir_->Join("tiny.png");
    WriteFile(image_, ReadFile(SourceDir() + "/tests/fixtures/images/tiny_20x15.png"));
    std::string yaml = "models:\n  tiny:\n    path: " + TinyModelDir() + "\nallowed_roots: [" +
                       dir_->path() + "]\nlimits:\n  max_running: 8\n";
    server_ = ServerProcess::Start(yaml, dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << error_;
    stub_ = server_->Stub();
  }
  static std::string OfflineRequest(const std::string& text, bool with_image) {
    std::string content = "[{\"type\": \"text\", \"text\": \"" + text + "\"}]";
    if (with_image) {
      content = "[{\"type\": \"image\", \"image\": \"" + image_ +
                "\"}, {\"type\": \"text\", "
                "\"text\": \"" +
                text + "\"}]";
    }
    return "{\"messages\": [{\"role\": \"user\", \"content\": " + content + "}]}";
  }
  static std::vector<int32_t> Ids(const v1::InferResponse& r) {
    return {r.token_ids().begin(), r.token_ids().end()};
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_, image_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TempDir* InferE2E::dir_ = nullptr;
ServerProcess* InferE2E::server_ = nullptr;
std::string InferE2E::error_, InferE2E::image_;

TEST_F(InferE2E, UnaryAndStreamAgree) {
  v1::InferRequest request = TextRequest("Describe a cat in one sentence.", 16);
  v1::InferResponse unary;
  grpc::Status s = Infer(*stub_, request, &unary);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(unary.token_ids_size(), 0);
  EXPECT_EQ(unary.model(), "tiny");
  EXPECT_NE(unary.finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(unary.usage().completion_tokens(), unary.token_ids_size());
  EXPECT_GT(unary.usage().prompt_tokens(), 5);
  EXPECT_EQ(unary.usage().image_tokens(), 0);
  EXPECT_GT(unary.timings().total_ms(), 0);
  EXPECT_LE(unary.timings().time_to_first_token_ms(), unary.timings().total_ms());

  StreamResult stream = InferStream(*stub_, request);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.text, unary.text());
  EXPECT_EQ(stream.token_ids, Ids(unary));
  EXPECT_GE(stream.deltas, 1);
  EXPECT_EQ(stream.dones, 1);
  EXPECT_EQ(stream.done.finish_reason(), unary.finish_reason());
  EXPECT_EQ(stream.done.usage().completion_tokens(), unary.usage().completion_tokens());
  EXPECT_EQ(stream.done.usage().prompt_tokens(), unary.usage().prompt_tokens());
}

TEST_F(InferE2E, MatchesOfflineGenerate) {
  const int kTokens = 12;
  std::string error;
  std::vector<int32_t> offline = OfflineGenerate(
      TinyModelDir(), OfflineRequest("Write a formula.", false), kTokens, dir_->path(), &error);
  ASSERT_FALSE(offline.empty()) << error;
  v1::InferResponse served;
  ASSERT_TRUE(Infer(*stub_, TextRequest("Write a formula.", kTokens), &served).ok());
  EXPECT_EQ(Ids(served), offline);
}

TEST_F(InferE2E, ImagesAsBytesAndAsPathsMatchOfflineGenerate) {
  const int kTokens = 8;
  std::string error;
  std::vector<int32_t> offline = OfflineGenerate(
      TinyModelDir(), OfflineRequest("What is shown?", true), kTokens, dir_->path(), &error);
  ASSERT_FALSE(offline.empty()) << error;
  for (bool by_path : {false, true}) {
    v1::InferRequest request = TextRequest("What is shown?", kTokens);
    v1::ChatMessage* m = request.mutable_messages(0);
    m->clear_content();
    if (by_path) {
      m->add_content()->mutable_image()->set_path(image_);
    } else {
      m->add_content()->mutable_image()->set_data(ReadFile(image_));
    }
    m->add_content()->set_text("What is shown?");
    v1::InferResponse served;
    grpc::Status s = Infer(*stub_, request, &served);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(Ids(served), offline) << (by_path ? "path" : "bytes");
    EXPECT_GT(served.usage().image_tokens(), 0);
  }
}

TEST_F(InferE2E, ConcurrentClientsGetTheirOwnTokens) {
  const int kThreads = 8, kPerThread = 2, kTokens = 8;
  std::vector<std::string> prompts;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    prompts.push_back("Prompt number " + std::to_string(i) + ": " + std::string(i % 5 + 1, 'x'));
  }
  std::vector<std::vector<int32_t>> alone(prompts.size()), together(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    v1::InferResponse r;
    ASSERT_TRUE(Infer(*stub_, TextRequest(prompts[i], kTokens), &r).ok());
    alone[i] = Ids(r);
  }
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(prompts.size());
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = server_->Stub();  // one channel per client
      for (int k = 0; k < kPerThread; ++k) {
        size_t i = static_cast<size_t>(t * kPerThread + k);
        v1::InferResponse r;
        statuses[i] = Infer(*stub, TextRequest(prompts[i], kTokens), &r);
        together[i] = Ids(r);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(together[i], alone[i]) << "prompt " << i;
  }
}

TEST_F(InferE2E, LogprobsAndSampling) {
  v1::InferRequest request = TextRequest("Count to three.", 4);
  request.mutable_params()->set_top_logprobs(3);
  request.mutable_params()->set_repetition_penalty(1.0);  // greedy = the raw top-1
  request.mutable_params()->set_ignore_eos(true);
  v1::InferResponse r;
  ASSERT_TRUE(Infer(*stub_, request, &r).ok());
  ASSERT_EQ(r.token_ids_size(), 4);
  EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_LENGTH);
  ASSERT_EQ(r.logprobs_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const v1::TokenLogprob& lp = r.logprobs(i);
    EXPECT_EQ(lp.token_id(), r.token_ids(i));
    EXPECT_LE(lp.logprob(), 0.0f);
    ASSERT_EQ(lp.top_logprobs_size(), 3);
    EXPECT_EQ(lp.top_logprobs(0).token_id(), lp.token_id());  // greedy picks the best
  }
  v1::InferRequest sampled = TextRequest("Count to three.", 6);
  sampled.mutable_params()->set_temperature(0.9);
  sampled.mutable_params()->set_top_p(0.95);
  sampled.mutable_params()->set_seed(1234);
  v1::InferResponse a, b;
  ASSERT_TRUE(Infer(*stub_, sampled, &a).ok());
  ASSERT_TRUE(Infer(*stub_, sampled, &b).ok());
  EXPECT_EQ(Ids(a), Ids(b));  // same seed, same tokens
}

TEST_F(InferE2E, StopStringCutsTheText) {
  v1::InferRequest request = TextRequest("Say something long.", 24);
  request.mutable_params()->set_ignore_eos(true);
  v1::InferResponse full;
  ASSERT_TRUE(Infer(*stub_, request, &full).ok());
  // The stop string: the second character (a whole UTF-8 code point) of the greedy text.
  const std::string& text = full.text();
  auto char_len = [&](size_t i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    return c < 0x80 ? 1u : (c >> 5) == 0x6 ? 2u : (c >> 4) == 0xE ? 3u : 4u;
  };
  ASSERT_GE(text.size(), 2u) << "the tiny model produced too little text";
  size_t second = char_len(0);
  ASSERT_LT(second, text.size()) << text;
  std::string stop = text.substr(second, char_len(second));
  size_t cut = text.find(stop);
  request.mutable_params()->add_stop(stop);
  v1::InferResponse stopped;
  ASSERT_TRUE(Infer(*stub_, request, &stopped).ok());
  EXPECT_EQ(stopped.text(), full.text().substr(0, cut));
  EXPECT_EQ(stopped.finish_reason(), v1::FINISH_REASON_STOP);
  StreamResult stream = InferStream(*stub_, request);
  ASSERT_TRUE(stream.status.ok());
  EXPECT_EQ(stream.text, stopped.text());  // streamed text never shows the stop string
}

}  // namespace
}  // namespace vlmd::e2e
