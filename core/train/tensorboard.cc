#include "core/train/tensorboard.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/train/tfrecord.h"

namespace vlmd {
namespace {

double WallTime() {
  const std::chrono::duration<double> now = std::chrono::system_clock::now().time_since_epoch();
  return now.count();
}

std::string HostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) return "localhost";
  return host;
}

// Reads Summary{value{tag, simple_value}} entries into `out` at (step, wall_time).
bool ReadSummary(std::string_view summary, int64_t step, double wall_time,
                 std::map<std::string, std::vector<ScalarPoint>>* out) {
  ProtoReader values(summary);
  ProtoField value_field;
  while (values.Next(&value_field)) {
    if (value_field.number != 1 || value_field.wire_type != 2) continue;
    ProtoReader value(value_field.bytes);
    ProtoField f;
    std::string tag;
    bool has_scalar = false;
    float scalar = 0;
    while (value.Next(&f)) {
      if (f.number == 1 && f.wire_type == 2) tag = std::string(f.bytes);
      if (f.number == 2 && f.wire_type == 5) scalar = f.AsFloat(), has_scalar = true;
    }
    if (!value.ok()) return false;
    if (has_scalar) (*out)[tag].push_back({step, static_cast<double>(scalar), wall_time});
  }
  return values.ok();
}

// Reads one Event record. Sets *file_version when it is a file_version event.
bool ReadEvent(std::string_view event, std::string* file_version,
               std::map<std::string, std::vector<ScalarPoint>>* out) {
  ProtoReader reader(event);
  ProtoField f;
  double wall_time = 0;
  int64_t step = 0;
  std::string_view summary;
  while (reader.Next(&f)) {
    if (f.number == 1 && f.wire_type == 1) wall_time = f.AsDouble();
    if (f.number == 2 && f.wire_type == 0) step = static_cast<int64_t>(f.varint);
    if (f.number == 3 && f.wire_type == 2) *file_version = std::string(f.bytes);
    if (f.number == 5 && f.wire_type == 2) summary = f.bytes;
  }
  return reader.ok() && ReadSummary(summary, step, wall_time, out);
}

}  // namespace

std::string TensorBoardFileName() {
  return absl::StrCat("events.out.tfevents.", static_cast<int64_t>(std::time(nullptr)), ".",
                      HostName(), ".", getpid(), ".0");
}

StatusOr<std::unique_ptr<TensorBoardSink>> TensorBoardSink::Create(const std::string& log_dir) {
  RETURN_IF_ERROR(MakeDirs(log_dir, 0755));
  const std::string path = JoinPath(log_dir, TensorBoardFileName());
  std::FILE* file = std::fopen(path.c_str(), "ab");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  std::unique_ptr<TensorBoardSink> sink(new TensorBoardSink(file, path));
  std::lock_guard<std::mutex> lock(sink->mu_);
  sink->WriteRecord(EncodeFileVersionEvent(WallTime()));
  if (sink->write_failed_) return absl::InternalError(absl::StrCat("cannot write ", path));
  return sink;
}

TensorBoardSink::~TensorBoardSink() { std::fclose(file_); }

void TensorBoardSink::WriteRecord(const std::string& event) {
  const std::string record = FrameRecord(event);
  const bool ok = std::fwrite(record.data(), 1, record.size(), file_) == record.size() &&
                  std::fflush(file_) == 0;
  if (!ok && !write_failed_) {
    write_failed_ = true;
    VLMD_LOG(Warning) << "cannot append to " << path_ << ": " << std::strerror(errno);
  }
}

void TensorBoardSink::AddScalar(const std::string& tag, int64_t step, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  WriteRecord(EncodeScalarEvent(WallTime(), step, tag, static_cast<float>(value)));
}

void TensorBoardSink::OnTrainLog(const TrainLog& log) {
  AddScalar("train/loss", log.step, log.loss);
  AddScalar("train/acc", log.step, log.acc);
  AddScalar("train/learning_rate", log.step, log.learning_rate);
  AddScalar("train/grad_norm", log.step, log.grad_norm);
  AddScalar("train/train_speed", log.step, log.train_speed);
}

void TensorBoardSink::OnEvalLog(const EvalLog& log) {
  AddScalar("eval/loss", log.step, log.eval_loss);
  AddScalar("eval/acc", log.step, log.eval_acc);
  AddScalar("eval/runtime", log.step, log.eval_runtime);
  AddScalar("eval/samples_per_second", log.step, log.eval_samples_per_second);
  AddScalar("eval/steps_per_second", log.step, log.eval_steps_per_second);
  for (const auto& [name, value] : log.extra) AddScalar("eval/" + name, log.step, value);
}

StatusOr<std::map<std::string, std::vector<ScalarPoint>>> ReadTensorBoardScalars(
    const std::string& path, bool allow_partial_tail) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  ASSIGN_OR_RETURN(std::vector<std::string> records,
                   ReadRecords(contents, path, allow_partial_tail));
  if (records.empty()) return absl::DataLossError(absl::StrCat(path, ": no records"));
  std::map<std::string, std::vector<ScalarPoint>> scalars;
  for (size_t i = 0; i < records.size(); ++i) {
    std::string file_version;
    if (!ReadEvent(records[i], &file_version, &scalars)) {
      return absl::DataLossError(
          absl::StrCat(path, ": record ", i, " is not a valid Event message"));
    }
    if (i == 0 && file_version != kEventFileVersion) {
      return absl::DataLossError(absl::StrCat(path, ": first event has file_version '",
                                              file_version, "', expected '", kEventFileVersion,
                                              "'"));
    }
  }
  return scalars;
}

}  // namespace vlmd
