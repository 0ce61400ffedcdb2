// vlmd.v1.Jobs messages <-> core/api structs: unset fields keep SWIFT's defaults, the
// effective spec comes back complete, states and event types map one to one.
#include "server/job_convert.h"

#include <gtest/gtest.h>

namespace vlmd::server {
namespace {

TEST(JobConvert, UnsetFieldsKeepSwiftDefaults) {
  v1::JobSpec in;
  in.set_model("/m");
  in.add_dataset("/d/train.jsonl");
  JobSpec spec = FromProto(in);
  JobSpec defaults;
  EXPECT_EQ(spec.model, "/m");
  EXPECT_EQ(spec.datasets, std::vector<std::string>{"/d/train.jsonl"});
  EXPECT_EQ(spec.lora_rank, defaults.lora_rank);
  EXPECT_EQ(spec.lora_alpha, 32);
  EXPECT_EQ(spec.lora_dropout, 0.05);
  EXPECT_EQ(spec.learning_rate, 1e-4);
  EXPECT_EQ(spec.target_modules, std::vector<std::string>{"DEFAULT"});
  EXPECT_EQ(spec.split_ratio, 0.01);
  EXPECT_EQ(spec.save_total_limit, 2);
  EXPECT_EQ(spec.gpus, 1);
  EXPECT_EQ(spec.dtype, "auto");
  EXPECT_FALSE(spec.max_pixels.has_value());
  EXPECT_FALSE(spec.greater_is_better.has_value());
  EXPECT_TRUE(spec.gradient_checkpointing);
}

TEST(JobConvert, SetFieldsWinEvenWhenZero) {
  v1::JobSpec in;
  in.set_lora_dropout(0);
  in.set_gpus(0);
  in.set_max_grad_norm(0);
  in.set_shuffle(false);
  in.set_max_pixels(50176);
  in.set_greater_is_better(false);
  in.add_target_modules("q_proj");
  in.add_target_modules("v_proj");
  in.set_lr_scheduler_type("constant");
  in.set_predict_with_generate(true);
  in.set_generation_max_new_tokens(16);
  JobSpec spec = FromProto(in);
  EXPECT_EQ(spec.lora_dropout, 0);
  EXPECT_EQ(spec.gpus, 0);
  EXPECT_EQ(spec.max_grad_norm, 0);
  EXPECT_FALSE(spec.shuffle);
  EXPECT_EQ(spec.max_pixels, 50176);
  EXPECT_EQ(spec.greater_is_better, false);
  EXPECT_EQ(spec.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(spec.lr_scheduler_type, "constant");
  EXPECT_TRUE(spec.predict_with_generate);
  EXPECT_EQ(spec.generation_max_new_tokens, 16);
}

TEST(JobConvert, TheEffectiveSpecIsComplete) {
  JobSpec spec;
  spec.model = "/m";
  spec.batch_size = 2;
  spec.gpus = 2;
  v1::JobSpec out;
  ToProto(spec, &out);
  EXPECT_EQ(out.gradient_accumulation_steps(), 4);  // ceil(16 / 2 / 2)
  EXPECT_TRUE(out.has_lora_rank() && out.has_learning_rate() && out.has_seed());
  EXPECT_FALSE(out.greater_is_better());  // loss: lower is better
  EXPECT_FALSE(out.has_max_pixels());
  spec.metric_for_best_model = "bleu";
  ToProto(spec, &out);
  EXPECT_TRUE(out.greater_is_better());
  JobSpec back = FromProto(out);
  EXPECT_EQ(back.model, "/m");
  EXPECT_EQ(back.gradient_accumulation_steps, 4);
}

TEST(JobConvert, StatesAndEventTypesMapOneToOne) {
  for (api::JobState s :
       {api::JobState::kValidating, api::JobState::kQueued, api::JobState::kRunning,
        api::JobState::kSucceeded, api::JobState::kFailed, api::JobState::kCancelled}) {
    EXPECT_EQ(FromProto(ToProto(s)), s);
  }
  EXPECT_FALSE(FromProto(v1::JOB_STATE_UNSPECIFIED).has_value());
  EXPECT_EQ(ToProto(api::JobEvent::Type::kCheckpoint), v1::JOB_EVENT_TYPE_CHECKPOINT);
  EXPECT_EQ(ToProto(api::JobEvent::Type::kLog), v1::JOB_EVENT_TYPE_LOG);
}

TEST(JobConvert, StatusMetricsAndEventsWithoutSpec) {
  api::JobStatus s;
  s.id = "sft-1";
  s.state = api::JobState::kRunning;
  s.train_metrics = {{"loss", 1.5}, {"acc", 0.5}, {"learning_rate", 1e-4}, {"grad_norm", 2}};
  s.eval_metrics = {{"eval_loss", 1.25}, {"eval_acc", 0.75}, {"eval_bleu", 0.1}};
  s.checkpoints = {{10, "/j/checkpoint-10", {{"loss", 1.25}}, true}};
  s.gpus = {1, 3};
  s.spec.model = "/m";
  v1::JobStatus out;
  ToProto(s, &out);
  EXPECT_EQ(out.train_metrics().loss(), 1.5);
  EXPECT_EQ(out.eval_metrics().loss(), 1.25);
  EXPECT_EQ(out.eval_metrics().all().at("eval_bleu"), 0.1);
  EXPECT_TRUE(out.checkpoints(0).best());
  EXPECT_EQ(out.gpus_size(), 2);
  EXPECT_EQ(out.spec().model(), "/m");
  api::JobEvent e;
  e.seq = 7;
  e.status = s;
  v1::JobEvent event;
  ToProto(e, &event);
  EXPECT_EQ(event.seq(), 7);
  EXPECT_FALSE(event.status().has_spec());
  api::JobStatus fresh;  // no report yet: the metric messages stay unset
  out.Clear();
  ToProto(fresh, &out);
  EXPECT_FALSE(out.has_train_metrics() || out.has_eval_metrics());
}

TEST(JobConvert, MergeAndEvaluateRequests) {
  v1::MergeLoraRequest merge;
  merge.set_output_dir("/out");
  EXPECT_EQ(FromProto(merge).status().code(), absl::StatusCode::kInvalidArgument);
  merge.set_job_id("sft-1");
  StatusOr<api::MergeRequest> m = FromProto(merge);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->checkpoint, "best");
  EXPECT_EQ(m->dtype, "auto");
  v1::EvaluateRequest eval;
  eval.add_dataset("/d/val.jsonl");
  api::EvalRequest e = FromProto(eval);
  EXPECT_EQ(e.sampling.temperature, 0.0);  // greedy unless set
  EXPECT_EQ(e.concurrency, 8);
  EXPECT_TRUE(e.teacher_forced);
  eval.set_teacher_forced(false);
  eval.mutable_params()->set_temperature(0.7);
  e = FromProto(eval);
  EXPECT_FALSE(e.teacher_forced);
  EXPECT_EQ(e.sampling.temperature, 0.7);
}

}  // namespace
}  // namespace vlmd::server
