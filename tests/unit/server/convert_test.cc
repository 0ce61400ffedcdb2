// vlmd.v1 messages <-> facade structs.
#include "server/convert.h"

#include <gtest/gtest.h>

namespace vlmd::server {
namespace {

v1::InferRequest TwoImageRequest() {
  v1::InferRequest r;
  r.set_model("tiny");
  r.set_adapter("latex");
  r.set_request_id("abc");
  v1::ChatMessage* sys = r.add_messages();
  sys->set_role("system");
  sys->add_content()->set_text("be brief");
  v1::ChatMessage* user = r.add_messages();
  user->set_role("user");
  user->add_content()->mutable_image()->set_data("PNGBYTES");
  user->add_content()->set_text("and");
  user->add_content()->mutable_image()->set_path("/data/x.png");
  return r;
}

TEST(Convert, MessagesAndImagesInOrder) {
  StatusOr<api::InferRequest> r = FromProto(TwoImageRequest());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "tiny");
  EXPECT_EQ(r->adapter, "latex");
  EXPECT_EQ(r->request_id, "abc");
  ASSERT_EQ(r->prompt.messages.size(), 2u);
  EXPECT_EQ(r->prompt.messages[0].role, "system");
  const auto& parts = r->prompt.messages[1].content;
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].type, ContentPart::Type::kImage);
  EXPECT_EQ(parts[1].type, ContentPart::Type::kText);
  EXPECT_EQ(parts[1].text, "and");
  EXPECT_EQ(parts[2].type, ContentPart::Type::kImage);
  ASSERT_EQ(r->prompt.images.size(), 2u);
  EXPECT_EQ(r->prompt.images[0].bytes, "PNGBYTES");
  EXPECT_EQ(r->prompt.images[1].path, "/data/x.png");
  EXPECT_FALSE(r->prompt.min_pixels.has_value());
  EXPECT_FALSE(r->prompt.prompt_ids.has_value());
}

TEST(Convert, EmptyPartsAreNamed) {
  v1::InferRequest r = TwoImageRequest();
  r.mutable_messages(1)->add_content();  // neither text nor image
  StatusOr<api::InferRequest> out = FromProto(r);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("messages[1].content[3]"), std::string::npos)
      << out.status();
  r = TwoImageRequest();
  r.mutable_messages(1)->add_content()->mutable_image();
  out = FromProto(r);
  EXPECT_NE(out.status().message().find("messages[1].content[3].image has neither"),
            std::string::npos)
      << out.status();
  r = TwoImageRequest();
  r.mutable_messages(1)->add_content()->mutable_image()->set_data("");
  EXPECT_NE(FromProto(r).status().message().find("image.data is empty"), std::string::npos);
}

TEST(Convert, UnsetParametersStayUnset) {
  v1::InferRequest r = TwoImageRequest();
  StatusOr<api::InferRequest> out = FromProto(r);
  ASSERT_TRUE(out.ok());
  const SamplingRequest& s = out->sampling;
  EXPECT_FALSE(s.max_new_tokens || s.temperature || s.top_p || s.top_k || s.repetition_penalty ||
               s.seed);
  EXPECT_FALSE(s.logprobs);
  v1::GenerationParams* p = r.mutable_params();
  p->set_temperature(0);  // set to zero differs from unset
  p->set_max_new_tokens(7);
  p->set_top_p(0.5);
  p->set_top_k(3);
  p->set_repetition_penalty(1.1);
  p->set_seed(99);
  p->add_stop("END");
  p->set_top_logprobs(2);
  p->set_ignore_eos(true);
  r.set_min_pixels(3136);
  r.set_max_pixels(50176);
  out = FromProto(r);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->sampling.temperature, 0.0);
  EXPECT_EQ(out->sampling.max_new_tokens, 7);
  EXPECT_EQ(out->sampling.top_p, 0.5);
  EXPECT_EQ(out->sampling.top_k, 3);
  EXPECT_EQ(out->sampling.seed, 99u);
  EXPECT_EQ(out->sampling.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(out->sampling.top_logprobs, 2);
  EXPECT_TRUE(out->sampling.logprobs);  // top_logprobs implies logprobs
  EXPECT_TRUE(out->sampling.ignore_eos);
  EXPECT_EQ(out->prompt.min_pixels, 3136);
  EXPECT_EQ(out->prompt.max_pixels, 50176);
}

TEST(Convert, ResultToResponse) {
  GenerationResult g;
  g.token_ids = {5, 6, 7};
  g.text = "hi";
  g.finish_reason = FinishReason::kStop;
  g.logprobs.push_back({5, -0.5f, {{5, -0.5f}, {9, -1.5f}}});
  g.usage = {30, 16, 3};
  g.timings = {1.5, 20.0, 42.0};
  v1::InferResponse r;
  ToProto(RequestNames{"id1", "tiny", "latex"}, g, &r);
  EXPECT_EQ(r.request_id(), "id1");
  EXPECT_EQ(r.model(), "tiny");
  EXPECT_EQ(r.adapter(), "latex");
  EXPECT_EQ(r.text(), "hi");
  EXPECT_EQ(r.token_ids_size(), 3);
  EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_STOP);
  ASSERT_EQ(r.logprobs_size(), 1);
  EXPECT_EQ(r.logprobs(0).top_logprobs_size(), 2);
  EXPECT_EQ(r.logprobs(0).top_logprobs(1).token_id(), 9);
  EXPECT_EQ(r.usage().image_tokens(), 16);
  EXPECT_EQ(r.timings().time_to_first_token_ms(), 20.0);
  v1::InferDone d;
  ToProto(RequestNames{"id1", "tiny", ""}, g, &d);
  EXPECT_EQ(d.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(d.usage().completion_tokens(), 3);
  EXPECT_EQ(d.timings().total_ms(), 42.0);
}

TEST(Convert, ChunksMergeIntoOneDelta) {
  v1::InferDelta d;
  AppendToProto(api::InferChunk{"Hel", {1}, {}}, &d);
  AppendToProto(api::InferChunk{"lo", {2}, {TokenLogprob{2, -0.1f, {}}}}, &d);
  EXPECT_EQ(d.text(), "Hello");
  EXPECT_EQ(d.token_ids_size(), 2);
  EXPECT_EQ(d.logprobs_size(), 1);
}

TEST(Convert, ModelAndAdapterInfo) {
  api::ModelInfo m;
  m.name = "tiny";
  m.min_max_pixels = "3136..1003520";
  m.parameters = 123;
  v1::ModelInfo pm;
  ToProto(m, &pm);
  EXPECT_EQ(pm.min_pixels(), 3136);
  EXPECT_EQ(pm.max_pixels(), 1003520);
  EXPECT_EQ(pm.parameters(), 123);
  api::AdapterInfo a;
  a.name = "latex";
  a.rank = 8;
  a.target_modules = {"q_proj", "v_proj"};
  a.max_pixels = 50176;
  v1::AdapterInfo pa;
  ToProto(a, &pa);
  EXPECT_EQ(pa.rank(), 8);
  EXPECT_EQ(pa.target_modules_size(), 2);
  EXPECT_FALSE(pa.has_min_pixels());
  EXPECT_EQ(pa.max_pixels(), 50176);
}

TEST(Convert, Deadlines) {
  using namespace std::chrono;
  EXPECT_FALSE(SteadyDeadline(system_clock::time_point::max()).has_value());
  auto d = SteadyDeadline(system_clock::now() + seconds(10));
  ASSERT_TRUE(d.has_value());
  double left = duration<double>(*d - steady_clock::now()).count();
  EXPECT_GT(left, 9.0);
  EXPECT_LE(left, 10.0);
}

}  // namespace
}  // namespace vlmd::server

namespace vlmd::server {
namespace {

TEST(Convert, TextIsAlwaysValidUtf8) {
  GenerationResult g;
  g.text = "caf\xC3\xA9 \xE2\x88\x9A ok\xFF end\xE2\x88";  // é, √, a stray byte, a cut sequence
  v1::InferResponse r;
  ToProto(RequestNames{}, g, &r);
  EXPECT_EQ(r.text(), "caf\xC3\xA9 \xE2\x88\x9A ok\xEF\xBF\xBD end\xEF\xBF\xBD\xEF\xBF\xBD");
  v1::InferDelta d;
  AppendToProto(api::InferChunk{"\xF0\x9F\x98\x80", {1}, {}}, &d);  // a 4-byte emoji stays
  EXPECT_EQ(d.text(), "\xF0\x9F\x98\x80");
  v1::InferDelta bad;
  AppendToProto(api::InferChunk{"\xC0\xAF", {1}, {}}, &bad);  // overlong '/'
  EXPECT_EQ(bad.text(), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace vlmd::server
