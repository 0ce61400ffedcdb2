// A stand-in for `vlmd train --job DIR` used by the job-system unit tests. It is a real
// process that the real launcher, monitor, retry and recovery code start, read, signal and
// reap; it trains nothing. It speaks the worker's protocol: progress lines (JSON) on stdout
// (and appended to DIR/progress.jsonl),
// logs on stderr, checkpoint-N/ directories with trainer_state.json written last, resume from
// job.json's resume_from_checkpoint, exit 0 on success, 3 after SIGTERM (cancelled), 4 with a
// FAILED state line on (simulated) out of memory, 1 with a FAILED state line on other errors.
// The end-to-end tests with the real `vlmd train` worker live in tests/e2e, not here.
//
// Behaviour per job comes from the JSON file named by VLMD_TEST_PLAN, keyed by job name:
//   steps (10), step_ms (20), crash_attempts ([]) with crash_step and crash_how
//   ("sigkill" | "exit1"), oom_step (0 = never), ignore_sigpipe (false), ignore_sigterm (false),
//   stray_lines (0: non-protocol lines printed on stdout at start).
// It appends one line per start to DIR/attempts.txt ("attempt=N resume=... cuda=... nvls=...")
// and "start|end NAME MS" lines to $VLMD_TEST_TIMELINE when set.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "core/train/job_spec.h"
#include "nlohmann/json.hpp"

namespace {

using json = nlohmann::json;

std::atomic<bool> g_stop{false};

void OnTerm(int) { g_stop = true; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string g_progress_path;  // <job dir>/progress.jsonl: a copy of every progress line

void Emit(const json& line) {
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
  std::ofstream(g_progress_path, std::ios::app) << line.dump() << "\n";
}

void Timeline(const std::string& what, const std::string& name) {
  const char* path = std::getenv("VLMD_TEST_TIMELINE");
  if (path == nullptr) return;
  std::ofstream(path, std::ios::app) << what << " " << name << " " << NowMs() << "\n";
}

int CountLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "<unset>";
}

void SaveCheckpoint(const std::string& dir, int64_t step, int64_t max_steps) {
  std::string ckpt = dir + "/checkpoint-" + std::to_string(step);
  mkdir(ckpt.c_str(), 0750);
  WriteAll(ckpt + "/adapter_config.json", R"({"r": 8, "lora_alpha": 32})");
  WriteAll(ckpt + "/adapter_model.safetensors", "test");
  double eval_loss = 1.0 / static_cast<double>(step);  // improves: the newest is the best
  Emit({{"type", "eval"}, {"step", step}, {"eval_loss", eval_loss}, {"eval_acc", 0.5}});
  json state = {{"version", 1},
                {"global_step", step},
                {"max_steps", max_steps},
                {"best_model_checkpoint", ckpt},
                {"best_metric", eval_loss}};
  WriteAll(ckpt + "/trainer_state.json", state.dump());  // last: marks the checkpoint complete
  Emit({{"type", "checkpoint"},
        {"step", step},
        {"path", ckpt},
        {"best", true},
        {"metrics", {{"eval_loss", eval_loss}}}});
}

int64_t ResumeStep(const std::string& checkpoint) {
  if (checkpoint.empty()) return 0;
  json state = json::parse(ReadAll(checkpoint + "/trainer_state.json"), nullptr, false);
  return state.is_object() ? state.value("global_step", int64_t{0}) : 0;
}

}  // namespace

// Descriptors above stderr that the worker inherited (the server must close them all).
int InheritedDescriptors() {
  int n = 0;
  for (int fd = 3; fd < 1024; ++fd) n += fcntl(fd, F_GETFD) != -1;
  return n;
}

int main(int argc, char** argv) {
  const int inherited = InheritedDescriptors();
  if (argc != 4 || std::string(argv[1]) != "train" || std::string(argv[2]) != "--job") {
    std::fprintf(stderr, "usage: %s train --job DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[3];
  g_progress_path = dir + "/progress.jsonl";
  auto spec = vlmd::JobSpec::FromJson(ReadAll(dir + "/job.json"), dir + "/job.json");
  if (!spec.ok()) {
    Emit({{"type", "state"}, {"state", "FAILED"}, {"message", spec.status().ToString()}});
    return 1;
  }
  json plans = json::parse(ReadAll(Env("VLMD_TEST_PLAN")), nullptr, false);
  json plan = plans.is_object() && plans.contains(spec->name) ? plans[spec->name] : json::object();
  const int attempt = CountLines(dir + "/attempts.txt") + 1;
  std::ofstream(dir + "/attempts.txt", std::ios::app)
      << "attempt=" << attempt << " resume=" << spec->resume_from_checkpoint
      << " cuda=" << Env("CUDA_VISIBLE_DEVICES") << " nvls=" << Env("NCCL_NVLS_ENABLE")
      << " multicast=" << Env("TORCH_SYMM_MEM_DISABLE_MULTICAST")
      << " nvshmem=" << Env("NVSHMEM_DISABLE_NVLS") << " fds=" << inherited << "\n";
  signal(SIGTERM, plan.value("ignore_sigterm", false) ? SIG_IGN : OnTerm);
  if (plan.value("ignore_sigpipe", false)) signal(SIGPIPE, SIG_IGN);
  Timeline("start", spec->name);
  const int64_t steps = plan.value("steps", int64_t{10});
  const int step_ms = plan.value("step_ms", 20);
  json crash_attempts = plan.value("crash_attempts", json::array());
  bool crash_now = false;
  for (const json& a : crash_attempts) crash_now = crash_now || a.get<int>() == attempt;
  Emit({{"type", "state"}, {"state", "RUNNING"}, {"max_steps", steps}});
  for (int i = 0; i < plan.value("stray_lines", 0); ++i) {
    std::printf("stray output %d\n", i);  // not a protocol line
  }
  std::fflush(stdout);
  for (int64_t step = ResumeStep(spec->resume_from_checkpoint) + 1; step <= steps; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    std::fprintf(stderr, "test worker: step %lld\n", static_cast<long long>(step));
    if (crash_now && step == plan.value("crash_step", int64_t{1})) {
      std::fprintf(stderr, "test worker: crashing at step %lld\n", static_cast<long long>(step));
      if (plan.value("crash_how", std::string("sigkill")) == "sigkill") raise(SIGKILL);
      Emit({{"type", "state"}, {"state", "FAILED"}, {"message", "simulated error"}});
      return 1;
    }
    if (step == plan.value("oom_step", int64_t{0})) {
      Emit({{"type", "state"},
            {"state", "FAILED"},
            {"message", "CUDA out of memory at step " + std::to_string(step) +
                            " (batch_size 1, max_pixels 1003520)"}});
      return 4;
    }
    Emit({{"type", "train"},
          {"step", step},
          {"max_steps", steps},
          {"epoch", 0.1 * step},
          {"loss", 2.0 / step},
          {"learning_rate", 1e-4},
          {"samples_per_second", 16.0}});
    if (step % spec->save_steps == 0 || step == steps) SaveCheckpoint(dir, step, steps);
    if (g_stop) {
      Emit({{"type", "state"}, {"state", "CANCELLED"}, {"message", "stopped by SIGTERM"}});
      Timeline("end", spec->name);
      return 3;
    }
  }
  Emit({{"type", "log"}, {"line", "training finished"}});
  Emit({{"type", "state"}, {"state", "SUCCEEDED"}});
  Timeline("end", spec->name);
  return 0;
}
