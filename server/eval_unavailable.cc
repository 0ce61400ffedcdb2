// EvalService::Create for builds without core/eval (the evaluation library): every Evaluate
// call answers UNIMPLEMENTED. server/CMakeLists.txt compiles this file only when the
// vlmd_eval target does not exist.
#include "core/api/eval.h"

namespace vlmd::api {
namespace {

class UnavailableEvalService final : public EvalService {
 public:
  StatusOr<EvalSummary> Evaluate(const EvalRequest&, const EvalProgress&) override {
    return absl::UnimplementedError("evaluation is not part of this vlmd build");
  }
};

}  // namespace

std::unique_ptr<EvalService> EvalService::Create(InferenceService*, JobService*,
                                                 std::vector<std::string>, std::string) {
  return std::make_unique<UnavailableEvalService>();
}

}  // namespace vlmd::api
