#include "server/job_convert.h"

#include "server/convert.h"

namespace vlmd::server {
namespace {

// Copies a proto3 optional field when it is set.
template <typename T, typename V>
void SetIf(bool has, const V& value, T* field) {
  if (has) *field = value;
}

void SetIf(const std::string& value, std::string* field) {
  if (!value.empty()) *field = value;
}

void SetIf(const google::protobuf::RepeatedPtrField<std::string>& values,
           std::vector<std::string>* field) {
  if (!values.empty()) field->assign(values.begin(), values.end());
}

void DataFromProto(const v1::JobSpec& in, JobSpec* s) {
  SetIf(in.name(), &s->name);
  SetIf(in.model(), &s->model);
  SetIf(in.dataset(), &s->datasets);
  SetIf(in.val_dataset(), &s->val_datasets);
  SetIf(in.has_dataset_test_ratio(), in.dataset_test_ratio(), &s->split_ratio);
  SetIf(in.has_seed(), in.seed(), &s->seed);
  SetIf(in.has_shuffle(), in.shuffle(), &s->shuffle);
  SetIf(in.has_max_length(), in.max_length(), &s->max_length);
  SetIf(in.has_min_pixels(), in.min_pixels(), &s->min_pixels);
  SetIf(in.has_max_pixels(), in.max_pixels(), &s->max_pixels);
}

void LoraFromProto(const v1::JobSpec& in, JobSpec* s) {
  SetIf(in.has_lora_rank(), in.lora_rank(), &s->lora_rank);
  SetIf(in.has_lora_alpha(), in.lora_alpha(), &s->lora_alpha);
  SetIf(in.has_lora_dropout(), in.lora_dropout(), &s->lora_dropout);
  SetIf(in.target_modules(), &s->target_modules);
  SetIf(in.has_use_rslora(), in.use_rslora(), &s->use_rslora);
  SetIf(in.init_adapter(), &s->init_adapter);
}

void OptimizerFromProto(const v1::JobSpec& in, JobSpec* s) {
  SetIf(in.has_learning_rate(), in.learning_rate(), &s->learning_rate);
  SetIf(in.lr_scheduler_type(), &s->lr_scheduler_type);
  SetIf(in.has_warmup_ratio(), in.warmup_ratio(), &s->warmup_ratio);
  SetIf(in.has_weight_decay(), in.weight_decay(), &s->weight_decay);
  SetIf(in.has_adam_beta1(), in.adam_beta1(), &s->adam_beta1);
  SetIf(in.has_adam_beta2(), in.adam_beta2(), &s->adam_beta2);
  SetIf(in.has_adam_epsilon(), in.adam_epsilon(), &s->adam_epsilon);
  SetIf(in.has_max_grad_norm(), in.max_grad_norm(), &s->max_grad_norm);
  SetIf(in.has_batch_size(), in.batch_size(), &s->batch_size);
  SetIf(in.has_gradient_accumulation_steps(), in.gradient_accumulation_steps(),
        &s->gradient_accumulation_steps);
  SetIf(in.has_eval_batch_size(), in.eval_batch_size(), &s->eval_batch_size);
  SetIf(in.has_num_train_epochs(), in.num_train_epochs(), &s->num_train_epochs);
  SetIf(in.has_max_steps(), in.max_steps(), &s->max_steps);
  SetIf(in.has_gradient_checkpointing(), in.gradient_checkpointing(), &s->gradient_checkpointing);
  SetIf(in.dtype(), &s->dtype);
}

void RunFromProto(const v1::JobSpec& in, JobSpec* s) {
  SetIf(in.has_eval_steps(), in.eval_steps(), &s->eval_steps);
  SetIf(in.has_save_steps(), in.save_steps(), &s->save_steps);
  SetIf(in.has_logging_steps(), in.logging_steps(), &s->logging_steps);
  SetIf(in.has_save_total_limit(), in.save_total_limit(), &s->save_total_limit);
  SetIf(in.metric_for_best_model(), &s->metric_for_best_model);
  SetIf(in.has_greater_is_better(), in.greater_is_better(), &s->greater_is_better);
  SetIf(in.has_gpus(), in.gpus(), &s->gpus);
  SetIf(in.has_processes(), in.processes(), &s->processes);
  SetIf(in.has_priority(), in.priority(), &s->priority);
  SetIf(in.resume_from_checkpoint(), &s->resume_from_checkpoint);
  SetIf(in.has_predict_with_generate(), in.predict_with_generate(), &s->predict_with_generate);
  SetIf(in.generation_eval(), &s->generation_eval);
  SetIf(in.has_generation_max_new_tokens(), in.generation_max_new_tokens(),
        &s->generation_max_new_tokens);
  SetIf(in.has_generation_max_samples(), in.generation_max_samples(), &s->generation_max_samples);
  SetIf(in.has_generation_batch_size(), in.generation_batch_size(), &s->generation_batch_size);
}

void DataToProto(const JobSpec& s, v1::JobSpec* out) {
  out->set_name(s.name);
  out->set_model(s.model);
  for (const std::string& d : s.datasets) out->add_dataset(d);
  for (const std::string& d : s.val_datasets) out->add_val_dataset(d);
  out->set_dataset_test_ratio(s.split_ratio);
  out->set_seed(s.seed);
  out->set_shuffle(s.shuffle);
  out->set_max_length(s.max_length);
  if (s.min_pixels) out->set_min_pixels(*s.min_pixels);
  if (s.max_pixels) out->set_max_pixels(*s.max_pixels);
  out->set_lora_rank(s.lora_rank);
  out->set_lora_alpha(s.lora_alpha);
  out->set_lora_dropout(s.lora_dropout);
  for (const std::string& t : s.target_modules) out->add_target_modules(t);
  out->set_use_rslora(s.use_rslora);
  out->set_init_adapter(s.init_adapter);
}

void RunToProto(const JobSpec& s, v1::JobSpec* out) {
  out->set_learning_rate(s.learning_rate);
  out->set_lr_scheduler_type(s.lr_scheduler_type);
  out->set_warmup_ratio(s.warmup_ratio);
  out->set_weight_decay(s.weight_decay);
  out->set_adam_beta1(s.adam_beta1);
  out->set_adam_beta2(s.adam_beta2);
  out->set_adam_epsilon(s.adam_epsilon);
  out->set_max_grad_norm(s.max_grad_norm);
  out->set_batch_size(s.batch_size);
  out->set_gradient_accumulation_steps(s.EffectiveAccumulation(s.WorldSize()));
  out->set_eval_batch_size(s.eval_batch_size);
  out->set_num_train_epochs(s.num_train_epochs);
  out->set_max_steps(s.max_steps);
  out->set_gradient_checkpointing(s.gradient_checkpointing);
  out->set_dtype(s.dtype);
  out->set_eval_steps(s.eval_steps);
  out->set_save_steps(s.save_steps);
  out->set_logging_steps(s.logging_steps);
  out->set_save_total_limit(s.save_total_limit);
  out->set_metric_for_best_model(s.metric_for_best_model);
  out->set_greater_is_better(s.GreaterIsBetter());
  out->set_gpus(s.gpus);
  out->set_processes(s.processes);
  out->set_priority(s.priority);
  out->set_resume_from_checkpoint(s.resume_from_checkpoint);
  out->set_predict_with_generate(s.predict_with_generate);
  out->set_generation_eval(s.generation_eval);
  out->set_generation_max_new_tokens(s.generation_max_new_tokens);
  out->set_generation_max_samples(s.generation_max_samples);
  out->set_generation_batch_size(s.generation_batch_size);
}

double Metric(const std::map<std::string, double>& metrics, const std::string& name) {
  auto it = metrics.find(name);
  return it == metrics.end() ? 0.0 : it->second;
}

void MetricsToProto(const api::JobStatus& in, v1::JobStatus* out) {
  if (!in.train_metrics.empty()) {
    v1::TrainMetrics* t = out->mutable_train_metrics();
    t->set_loss(Metric(in.train_metrics, "loss"));
    t->set_acc(Metric(in.train_metrics, "acc"));
    t->set_learning_rate(Metric(in.train_metrics, "learning_rate"));
    t->set_grad_norm(Metric(in.train_metrics, "grad_norm"));
    t->set_memory_gib(Metric(in.train_metrics, "memory_gib"));
    t->set_train_speed(Metric(in.train_metrics, "train_speed"));
  }
  if (!in.eval_metrics.empty()) {
    v1::EvalMetrics* e = out->mutable_eval_metrics();
    e->set_loss(Metric(in.eval_metrics, "eval_loss"));
    e->set_acc(Metric(in.eval_metrics, "eval_acc"));
    e->mutable_all()->insert(in.eval_metrics.begin(), in.eval_metrics.end());
  }
  for (const api::CheckpointInfo& c : in.checkpoints) {
    v1::Checkpoint* p = out->add_checkpoints();
    p->set_step(c.step);
    p->set_path(c.path);
    p->mutable_metrics()->insert(c.metrics.begin(), c.metrics.end());
    p->set_best(c.best);
  }
}

}  // namespace

JobSpec FromProto(const v1::JobSpec& in) {
  JobSpec spec;
  DataFromProto(in, &spec);
  LoraFromProto(in, &spec);
  OptimizerFromProto(in, &spec);
  RunFromProto(in, &spec);
  return spec;
}

void ToProto(const JobSpec& in, v1::JobSpec* out) {
  DataToProto(in, out);
  RunToProto(in, out);
}

std::optional<api::JobState> FromProto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_VALIDATING:
      return api::JobState::kValidating;
    case v1::JOB_STATE_QUEUED:
      return api::JobState::kQueued;
    case v1::JOB_STATE_RUNNING:
      return api::JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED:
      return api::JobState::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return api::JobState::kFailed;
    case v1::JOB_STATE_CANCELLED:
      return api::JobState::kCancelled;
    default:
      return std::nullopt;
  }
}

v1::JobState ToProto(api::JobState state) {
  switch (state) {
    case api::JobState::kValidating:
      return v1::JOB_STATE_VALIDATING;
    case api::JobState::kQueued:
      return v1::JOB_STATE_QUEUED;
    case api::JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case api::JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case api::JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case api::JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

v1::JobEventType ToProto(api::JobEvent::Type type) {
  using Type = api::JobEvent::Type;
  switch (type) {
    case Type::kState:
      return v1::JOB_EVENT_TYPE_STATE;
    case Type::kProgress:
      return v1::JOB_EVENT_TYPE_PROGRESS;
    case Type::kTrainMetrics:
      return v1::JOB_EVENT_TYPE_TRAIN_METRICS;
    case Type::kEvalMetrics:
      return v1::JOB_EVENT_TYPE_EVAL_METRICS;
    case Type::kCheckpoint:
      return v1::JOB_EVENT_TYPE_CHECKPOINT;
    case Type::kLog:
      return v1::JOB_EVENT_TYPE_LOG;
  }
  return v1::JOB_EVENT_TYPE_UNSPECIFIED;
}

void ToProto(const api::JobStatus& in, v1::JobStatus* out, bool with_spec) {
  out->set_id(in.id);
  out->set_name(in.name);
  out->set_state(ToProto(in.state));
  out->set_reason(in.reason);
  out->set_step(in.step);
  out->set_max_steps(in.max_steps);
  out->set_epoch(in.epoch);
  out->set_samples_per_second(in.samples_per_second);
  out->set_elapsed_seconds(in.elapsed_s);
  out->set_remaining_seconds(in.remaining_s);
  for (int gpu : in.gpus) out->add_gpus(gpu);
  MetricsToProto(in, out);
  out->set_best_checkpoint(in.best_checkpoint);
  out->set_job_dir(in.job_dir);
  out->set_attempts(in.attempts);
  out->set_created_unix(in.created_unix);
  out->set_started_unix(in.started_unix);
  out->set_finished_unix(in.finished_unix);
  out->set_train_samples(in.train_samples);
  out->set_val_samples(in.val_samples);
  out->set_skipped_samples(in.skipped_samples);
  out->set_validation_report(in.validation_report);
  if (with_spec) ToProto(in.spec, out->mutable_spec());
}

void ToProto(const api::JobEvent& in, v1::JobEvent* out) {
  out->set_seq(in.seq);
  out->set_time_unix_ms(in.time_unix_ms);
  out->set_type(ToProto(in.type));
  out->set_message(in.message);
  ToProto(in.status, out->mutable_status(), /*with_spec=*/false);
}

StatusOr<api::MergeRequest> FromProto(const v1::MergeLoraRequest& in) {
  api::MergeRequest out;
  out.model = in.model();
  switch (in.adapter_case()) {
    case v1::MergeLoraRequest::kAdapterDir:
      out.adapter_dir = in.adapter_dir();
      break;
    case v1::MergeLoraRequest::kJobId:
      out.job_id = in.job_id();
      break;
    default:
      return absl::InvalidArgumentError("merge: set adapter_dir or job_id");
  }
  if (!in.checkpoint().empty()) out.checkpoint = in.checkpoint();
  out.output_dir = in.output_dir();
  if (!in.dtype().empty()) out.dtype = in.dtype();
  out.register_as = in.register_as();
  return out;
}

void ToProto(const api::MergeResult& in, v1::MergeLoraResponse* out) {
  out->set_output_dir(in.output_dir);
  out->set_tensors(in.tensors);
  out->set_merged_modules(in.merged_modules);
  out->set_bytes(in.bytes);
  out->set_seconds(in.seconds);
}

api::EvalRequest FromProto(const v1::EvaluateRequest& in) {
  api::EvalRequest out;
  out.model = in.model();
  out.adapter = in.adapter();
  out.job_id = in.job_id();
  if (!in.checkpoint().empty()) out.checkpoint = in.checkpoint();
  out.datasets.assign(in.dataset().begin(), in.dataset().end());
  out.max_samples = in.max_samples();
  out.sampling = SamplingFromProto(in.params());
  if (!in.params().has_temperature()) out.sampling.temperature = 0;  // greedy by default
  if (in.concurrency() > 0) out.concurrency = in.concurrency();
  if (in.has_teacher_forced()) out.teacher_forced = in.teacher_forced();
  out.output_dir = in.output_dir();
  return out;
}

void ToProto(const api::EvalSampleResult& in, v1::EvalSample* out) {
  out->set_source(in.source);
  out->set_query(in.query);
  out->set_reference(in.reference);
  out->set_prediction(in.prediction);
  out->set_exact_match(in.exact_match);
  out->set_edit_distance_char(in.edit_distance_char);
  out->set_edit_distance_token(in.edit_distance_token);
  out->set_bleu(in.bleu);
  out->set_finish_reason(in.finish_reason);
  out->set_completion_tokens(in.completion_tokens);
  out->set_error(in.error);
}

void ToProto(const api::EvalSummary& in, v1::EvalSummary* out) {
  out->set_samples(in.samples);
  out->set_exact_match(in.exact_match);
  out->set_edit_distance_char(in.edit_distance_char);
  out->set_edit_distance_token(in.edit_distance_token);
  out->set_bleu(in.bleu);
  if (in.eval_loss) out->set_eval_loss(*in.eval_loss);
  if (in.eval_acc) out->set_eval_acc(*in.eval_acc);
  out->set_seconds(in.seconds);
  out->set_samples_per_second(in.samples_per_second);
  out->set_results_path(in.results_path);
  out->set_failed(in.failed);
  out->set_completion_tokens(in.completion_tokens);
  out->set_tokens_per_second(in.tokens_per_second);
}

}  // namespace vlmd::server
