// End-to-end helpers for the fine-tuning and evaluation tests: a small generated image+text
// data set, a server configured for CPU jobs, the Jobs stub with wait helpers, the worker
// process of a job, safetensors reading, and a pseudo-terminal runner for vlmctl chat.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"
#include "vlmd/v1/jobs.grpc.pb.h"

namespace vlmd::e2e {

// One row of a generated data set.
struct DataRow {
  std::string query;  // with an <image> tag
  std::string response;
  std::string image;  // absolute path of its PNG
};

// Writes `rows` samples: PNG images (56x56 or 112x56, coloured by the row) under
// <dir>/images/ and <dir>/<name> as jsonl with query/response/images. Returns the rows.
std::vector<DataRow> WriteImageDataset(const std::string& dir, int rows,
                                       const std::string& name = "train.jsonl");

// The YAML of a server serving the tiny model as "tiny" with jobs on: state dir
// <root>/state, allowed root <root>, `cpu_slots` CPU slots; `extra` is appended.
std::string JobServerYaml(const std::string& root, int cpu_slots = 1,
                          const std::string& extra = "");

// The SWIFT flags of a short CPU job on the tiny model (gpus 0, max_pixels 50176, learning
// rate 3e-3 (30x SWIFT's: the loss falls visibly in 20 steps), no dropout, no warm-up,
// accumulation 1, a log line per step) with `steps` steps; eval and save every `every`.
std::vector<std::string> QuickJobFlags(const std::string& data, int steps, int every,
                                       const std::string& learning_rate = "0.003");

std::unique_ptr<vlmd::v1::Jobs::Stub> JobsStub(const ServerProcess& server);

// GetJobStatus; the status code of the call.
grpc::Status GetJob(vlmd::v1::Jobs::Stub& stub, const std::string& id, vlmd::v1::JobStatus* job);
// Polls until `done` holds (or the job ends without it, or `timeout_s` pass); returns the
// last status seen.
vlmd::v1::JobStatus WaitForJob(vlmd::v1::Jobs::Stub& stub, const std::string& id,
                               const std::function<bool(const vlmd::v1::JobStatus&)>& done,
                               double timeout_s = 120);
vlmd::v1::JobStatus WaitForState(vlmd::v1::Jobs::Stub& stub, const std::string& id,
                                 vlmd::v1::JobState state, double timeout_s = 120);
// Every event of a job from `from_seq` on (WatchJob until the stream ends).
std::vector<vlmd::v1::JobEvent> JobEvents(vlmd::v1::Jobs::Stub& stub, const std::string& id,
                                          int64_t from_seq = 0, double timeout_s = 120);

// vlmctl with VLMD_ADDR set to the server.
ProcessResult Vlmctl(const ServerProcess& server, const std::vector<std::string>& args,
                     const std::string& stdin_data = "", double timeout_s = 180);

// The pid of the live `vlmd train --job <job_dir>` process, or 0.
int WorkerPid(const std::string& job_dir);

// Tensor names of a safetensors file (without __metadata__), and one float32 tensor's values.
std::vector<std::string> SafetensorsNames(const std::string& path);
std::vector<float> SafetensorsFloats(const std::string& path, const std::string& name);

// Lines of a text file.
std::vector<std::string> ReadLines(const std::string& path);

// Runs `argv` on a pseudo-terminal (its stdin and stdout are the terminal), types `input`
// and collects everything it printed (echo included) until it exits or `timeout_s` pass.
ProcessResult RunInTerminal(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, const std::string& input,
                            double timeout_s = 120);

}  // namespace vlmd::e2e
