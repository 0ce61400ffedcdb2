#include "core/train/sink.h"

namespace vlmd {

void FanoutSink::Add(std::unique_ptr<TrainingSink> sink) {
  sinks_.push_back(sink.get());
  owned_.push_back(std::move(sink));
}

void FanoutSink::OnTrainLog(const TrainLog& log) {
  for (TrainingSink* sink : sinks_) sink->OnTrainLog(log);
}

void FanoutSink::OnEvalLog(const EvalLog& log) {
  for (TrainingSink* sink : sinks_) sink->OnEvalLog(log);
}

void FanoutSink::OnCheckpoint(const CheckpointEvent& event) {
  for (TrainingSink* sink : sinks_) sink->OnCheckpoint(event);
}

void FanoutSink::OnState(const std::string& state, const std::string& message) {
  for (TrainingSink* sink : sinks_) sink->OnState(state, message);
}

void FanoutSink::OnLogLine(const std::string& line) {
  for (TrainingSink* sink : sinks_) sink->OnLogLine(line);
}

void FanoutSink::OnFinish(const TrainSummary& summary) {
  for (TrainingSink* sink : sinks_) sink->OnFinish(summary);
}

}  // namespace vlmd
