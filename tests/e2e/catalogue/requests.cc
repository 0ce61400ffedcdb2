// Catalogue rows for the request itself: messages and roles, the prompt, every generation
// parameter out of range, pixel bounds, and unknown model and adapter names.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "tests/e2e/catalogue/catalogue.h"

namespace vlmd::e2e::catalogue {
namespace {

using grpc::StatusCode;

void AddParam(std::vector<BadCase>* out, const std::string& name,
              const std::function<void(v1::InferRequest*)>& set, std::vector<std::string> message) {
  v1::InferRequest r = Text();
  set(&r);
  out->push_back(Case(name, kInfer, r, StatusCode::INVALID_ARGUMENT, message));
}

template <typename T>
std::string Show(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  }
  return absl::StrCat(v);
}

void AddGenerationParams(std::vector<BadCase>* out) {
  using P = v1::GenerationParams;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (int v :
       {0, -1, 65, 1000000, std::numeric_limits<int>::max(), std::numeric_limits<int>::min()}) {
    AddParam(out, "max_new_tokens = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_max_new_tokens(v); },
             {"max_new_tokens", "[1, 64]"});
  }
  for (double v : {-0.5, -1e-9, 100.5, 1e308, inf, -inf, nan}) {
    AddParam(out, "temperature = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_temperature(v); },
             {"temperature", "[0, 100]"});
  }
  for (double v : {0.0, -0.1, 1.0001, 2.0, nan, inf, -inf}) {
    AddParam(out, "top_p = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_top_p(v); }, {"top_p"});
  }
  for (int v : {-1, -1000, std::numeric_limits<int>::min()}) {
    AddParam(out, "top_k = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_top_k(v); }, {"top_k"});
  }
  for (double v : {0.0, -1.0, 10.01, 1e9, nan, inf, -inf}) {
    AddParam(out, "repetition_penalty = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_repetition_penalty(v); },
             {"repetition_penalty"});
  }
  for (int v : {-1, 21, 1000, std::numeric_limits<int>::max(), std::numeric_limits<int>::min()}) {
    AddParam(out, "top_logprobs = " + Show(v),
             [v](v1::InferRequest* r) { r->mutable_params()->set_top_logprobs(v); },
             {"top_logprobs"});
  }
  AddParam(out, "17 stop strings",
           [](v1::InferRequest* r) {
             for (int i = 0; i < 17; ++i) r->mutable_params()->add_stop(absl::StrCat("stop", i));
           },
           {"stop", "16"});
  AddParam(out, "an empty stop string",
           [](v1::InferRequest* r) { r->mutable_params()->add_stop(""); }, {"stop", "empty"});
  AddParam(out, "an empty stop string after a good one",
           [](v1::InferRequest* r) {
             r->mutable_params()->add_stop("\n");
             r->mutable_params()->add_stop("");
           },
           {"stop", "empty"});
  (void)sizeof(P);
}

void AddPixelBounds(std::vector<BadCase>* out) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    AddParam(out, "min_pixels = " + Show(v), [v](v1::InferRequest* r) { r->set_min_pixels(v); },
             {"min_pixels"});
  }
  for (int64_t v : {int64_t{0}, int64_t{-5}, std::numeric_limits<int64_t>::min()}) {
    AddParam(out, "max_pixels = " + Show(v), [v](v1::InferRequest* r) { r->set_max_pixels(v); },
             {"max_pixels"});
  }
  for (int64_t v : {int64_t{200705}, int64_t{1} << 40, std::numeric_limits<int64_t>::max()}) {
    AddParam(out, "max_pixels over the server limit: " + Show(v),
             [v](v1::InferRequest* r) { r->set_max_pixels(v); },
             {"max_pixels", "exceeds the server limit of 200704"});
  }
  AddParam(out, "min_pixels above max_pixels",
           [](v1::InferRequest* r) {
             r->set_min_pixels(100000);
             r->set_max_pixels(50000);
           },
           {"min_pixels <= max_pixels"});
  AddParam(out, "min_pixels above the model's default max_pixels",
           [](v1::InferRequest* r) { r->set_min_pixels(std::numeric_limits<int64_t>::max()); },
           {"min_pixels <= max_pixels"});
}

void AddMessages(std::vector<BadCase>* out) {
  out->push_back(Case("no messages", kInfer,
                      [] {
                        v1::InferRequest r = Text();
                        r.clear_messages();
                        return r;
                      }(),
                      StatusCode::INVALID_ARGUMENT, {"no messages"}));
  for (const char* role :
       {"robot", "", "System", "USER", "tool", "function", "assistant ", "<|im_start|>user"}) {
    AddParam(out, absl::StrCat("unknown role '", role, "'"),
             [role](v1::InferRequest* r) { r->mutable_messages(0)->set_role(role); },
             {"unknown message role"});
  }
  AddParam(out, "a content part with neither text nor image",
           [](v1::InferRequest* r) { r->mutable_messages(0)->add_content(); },
           {"messages[0].content[1] has neither text nor image"});
  AddParam(out, "an empty part in a second message",
           [](v1::InferRequest* r) {
             v1::ChatMessage* m = r->add_messages();
             m->set_role("assistant");
             m->add_content();
           },
           {"messages[1].content[0] has neither text nor image"});
  std::string words;
  for (int i = 0; i < 400; ++i) words += "hello ";
  AddParam(
      out, "prompt over max_prompt_tokens",
      [&](v1::InferRequest* r) { r->mutable_messages(0)->mutable_content(0)->set_text(words); },
      {"over the limit of 300"});
  std::string huge(200000, 'x');
  AddParam(out, "200 kB prompt text",
           [&](v1::InferRequest* r) { r->mutable_messages(0)->mutable_content(0)->set_text(huge); },
           {"over the limit of 300"});
  AddParam(out, "prompt spread over 200 messages",
           [](v1::InferRequest* r) {
             for (int i = 0; i < 200; ++i) {
               v1::ChatMessage* m = r->add_messages();
               m->set_role(i % 2 ? "user" : "assistant");
               m->add_content()->set_text("turn");
             }
           },
           {"over the limit of 300"});
  AddParam(out, "an image placeholder token typed into the text",
           [](v1::InferRequest* r) {
             r->mutable_messages(0)->mutable_content(0)->set_text("look: <|image_pad|>");
           },
           {"image"});
  AddParam(out, "two placeholder tokens typed into the text",
           [](v1::InferRequest* r) {
             r->mutable_messages(0)->mutable_content(0)->set_text("<|image_pad|><|image_pad|>");
           },
           {"image"});
  AddParam(out, "5 images, over max_images",
           [](v1::InferRequest* r) {
             for (int i = 0; i < 5; ++i) {
               r->mutable_messages(0)->add_content()->mutable_image()->set_data("x");
             }
           },
           {"5 images, over the limit of 4"});
}

void AddNames(const Env& env, std::vector<BadCase>* out) {
  for (const std::string& model : std::vector<std::string>{"no-such-model", "TINY", "../tiny",
                                                           std::string(4096, 'm'), " tiny"}) {
    v1::InferRequest r = Text();
    r.set_model(model);
    out->push_back(Case("unknown model '" + model.substr(0, 40) + "'", kInfer, r,
                        StatusCode::NOT_FOUND, {"model", model.substr(0, 40)}));
  }
  for (const std::string& adapter : std::vector<std::string>{
           "no-such-adapter", "FIXTURE", "../fixture", std::string(4096, 'a')}) {
    v1::InferRequest r = Text();
    r.set_adapter(adapter);
    out->push_back(Case("unknown adapter '" + adapter.substr(0, 40) + "'", kInfer, r,
                        StatusCode::NOT_FOUND, {"adapter", adapter.substr(0, 40)}));
  }
  v1::InferRequest other = Text();
  other.set_adapter("fixture");  // loaded for env.adapter_model, not for the default model
  out->push_back(Case("adapter of another model", kInfer, other, StatusCode::INVALID_ARGUMENT,
                      {"adapter 'fixture' belongs to model", env.model}));
}

}  // namespace

void AddRequestCases(const Env& env, std::vector<BadCase>* out) {
  AddGenerationParams(out);
  AddPixelBounds(out);
  AddMessages(out);
  AddNames(env, out);
}

}  // namespace vlmd::e2e::catalogue
