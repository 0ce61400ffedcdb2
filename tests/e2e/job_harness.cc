#include "tests/e2e/job_harness.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/unit/vision/test_png.h"

extern char** environ;

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kResponses[] = {"x^{2}+y^{2}", "\\frac{a}{b}", "\\sqrt{x+1}", "a_{n}=n!"};

std::string Png(int width, int height, int seed) {
  vision_testing::PngSpec spec;
  spec.width = width;
  spec.height = height;
  spec.color_type = 2;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      bool ink = (x / 7 + y / 7 + seed) % 3 == 0;
      spec.rows.push_back(static_cast<uint8_t>(ink ? 20 : 230 - 40 * (seed % 4)));
      spec.rows.push_back(static_cast<uint8_t>(ink ? 20 : 200 + 10 * (seed % 5)));
      spec.rows.push_back(static_cast<uint8_t>(ink ? 40 : 180 + 15 * (seed % 3)));
    }
  }
  return vision_testing::EncodePng(spec);
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

std::vector<DataRow> WriteImageDataset(const std::string& dir, int rows, const std::string& name) {
  mkdir((dir + "/images").c_str(), 0755);
  std::vector<DataRow> out;
  std::string jsonl;
  for (int i = 0; i < rows; ++i) {
    DataRow row;
    row.image = dir + "/images/" + name + "-" + std::to_string(i) + ".png";
    WriteFile(row.image, Png(i % 2 ? 112 : 56, 56, i));
    row.query = "<image>Using LaTeX to perform OCR on the image.";
    row.response = kResponses[i % 4];
    jsonl +=
        json{{"query", row.query}, {"response", row.response}, {"images", {row.image}}}.dump() +
        "\n";
    out.push_back(row);
  }
  WriteFile(dir + "/" + name, jsonl);
  return out;
}

std::string JobServerYaml(const std::string& root, int cpu_slots, const std::string& extra) {
  return "models:\n  tiny: " + TinyModelDir() + "\nallowed_roots: [" + root + ", " +
         TinyModelDir() + "]\nstate_dir: " + root +
         "/state\ntraining:\n  cpu_slots: " + std::to_string(cpu_slots) + "\n" + extra;
}

std::vector<std::string> QuickJobFlags(const std::string& data, int steps, int every,
                                       const std::string& learning_rate) {
  return {"--model",
          TinyModelDir(),
          "--dataset",
          data,
          "--gpus",
          "0",
          "--max_pixels",
          "50176",
          "--max_steps",
          std::to_string(steps),
          "--learning_rate",
          learning_rate,
          "--warmup_ratio",
          "0",
          "--lora_dropout",
          "0",
          "--gradient_accumulation_steps",
          "1",
          "--logging_steps",
          "1",
          "--eval_steps",
          std::to_string(every),
          "--save_steps",
          std::to_string(every),
          "--dataset_test_ratio",
          "0.2"};
}

std::unique_ptr<v1::Jobs::Stub> JobsStub(const ServerProcess& server) {
  return v1::Jobs::NewStub(server.Channel());
}

grpc::Status GetJob(v1::Jobs::Stub& stub, const std::string& id, v1::JobStatus* job) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::GetJobStatusRequest request;
  request.set_job_id(id);
  v1::GetJobStatusResponse response;
  grpc::Status status = stub.GetJobStatus(&ctx, request, &response);
  *job = response.job();
  return status;
}

v1::JobStatus WaitForJob(v1::Jobs::Stub& stub, const std::string& id,
                         const std::function<bool(const v1::JobStatus&)>& done, double timeout_s) {
  auto start = Clock::now();
  v1::JobStatus job;
  while (Seconds(start) < timeout_s) {
    v1::JobStatus now;
    if (GetJob(stub, id, &now).ok()) {
      job = now;
      if (done(job)) return job;
      bool ended = job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
                   job.state() == v1::JOB_STATE_CANCELLED;
      if (ended) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "gave up waiting on job " << id << " (" << v1::JobState_Name(job.state())
                << ", step " << job.step() << ", reason: " << job.reason() << ")";
  return job;
}

v1::JobStatus WaitForState(v1::Jobs::Stub& stub, const std::string& id, v1::JobState state,
                           double timeout_s) {
  return WaitForJob(
      stub, id, [state](const v1::JobStatus& j) { return j.state() == state; }, timeout_s);
}

std::vector<v1::JobEvent> JobEvents(v1::Jobs::Stub& stub, const std::string& id, int64_t from_seq,
                                    double timeout_s) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_from_seq(from_seq);
  auto reader = stub.WatchJob(&ctx, request);
  std::vector<v1::JobEvent> events;
  v1::JobEvent event;
  while (reader->Read(&event)) events.push_back(event);
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return events;
}

ProcessResult Vlmctl(const ServerProcess& server, const std::vector<std::string>& args,
                     const std::string& stdin_data, double timeout_s) {
  std::vector<std::string> argv = {VlmctlBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, {"VLMD_ADDR=" + server.address()}, timeout_s, stdin_data);
}

int WorkerPid(const std::string& job_dir) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  int found = 0;
  while (dirent* e = readdir(proc)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    std::vector<std::string> args;
    std::stringstream in(cmdline);
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    bool zombie = stat.find(") Z") != std::string::npos;
    if (!zombie && args.size() == 4 && args[1] == "train" && args[2] == "--job" &&
        args[3] == job_dir) {
      found = pid;
    }
  }
  closedir(proc);
  return found;
}

namespace {

// The JSON header of a safetensors file and the offset of its data.
json SafetensorsHeader(const std::string& bytes, size_t* data_start) {
  if (bytes.size() < 8) return json();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  *data_start = 8 + n;
  return json::parse(bytes.substr(8, n), nullptr, false);
}

}  // namespace

std::vector<std::string> SafetensorsNames(const std::string& path) {
  size_t start = 0;
  json header = SafetensorsHeader(ReadFile(path), &start);
  std::vector<std::string> names;
  if (!header.is_object()) return names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() != "__metadata__") names.push_back(it.key());
  }
  return names;
}

std::vector<float> SafetensorsFloats(const std::string& path, const std::string& name) {
  std::string bytes = ReadFile(path);
  size_t start = 0;
  json header = SafetensorsHeader(bytes, &start);
  if (!header.is_object() || !header.contains(name) || header[name]["dtype"] != "F32") return {};
  std::vector<size_t> offsets = header[name]["data_offsets"].get<std::vector<size_t>>();
  std::vector<float> values((offsets[1] - offsets[0]) / sizeof(float));
  std::memcpy(values.data(), bytes.data() + start + offsets[0], values.size() * sizeof(float));
  return values;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

ProcessResult RunInTerminal(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, const std::string& input,
                            double timeout_s) {
  ProcessResult result;
  // Everything the child needs is built before the fork (only exec runs after it).
  std::vector<std::string> envs = env;
  for (char** e = environ; *e != nullptr; ++e) envs.push_back(*e);  // the first wins
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  for (const std::string& kv : envs) envp.push_back(const_cast<char*>(kv.c_str()));
  args.push_back(nullptr);
  envp.push_back(nullptr);
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return result;
  if (pid == 0) {
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  (void)!write(master, input.data(), input.size());
  auto start = Clock::now();
  char buf[4096];
  while (Seconds(start) < timeout_s) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(master, buf, sizeof(buf));
    if (n <= 0) break;  // EIO once the child has exited and the output is drained
    result.out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  close(master);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace vlmd::e2e
