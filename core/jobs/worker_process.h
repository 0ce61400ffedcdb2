// Starting and inspecting training worker processes (`<binary> train --job <dir>`): posix_spawn
// with every other descriptor closed, a new process group, CUDA_VISIBLE_DEVICES and the NCCL /
// NVSHMEM multicast switches set, stdout on a pipe, stderr appended to <dir>/worker.log.
#pragma once

#include <string>
#include <vector>

#include "core/base/status.h"

namespace vlmd::jobs {

// What to start.
struct LaunchOptions {
  std::string binary;     // the vlmd executable (or a test worker)
  std::string job_dir;    // passed as `train --job <job_dir>`
  std::vector<int> gpus;  // CUDA_VISIBLE_DEVICES; empty = "" (no GPU visible)
  std::string log_path;   // stderr is appended here
  std::vector<std::pair<std::string, std::string>> extra_env;  // set after the defaults
};

// A started worker: its pid (also its process group id) and the read end of its stdout.
struct WorkerProcess {
  int pid = 0;
  int stdout_fd = -1;  // owned by the caller (close-on-exec)
};

// Starts the worker. Errors (cannot open the log, cannot exec the binary) name the file.
// Thread-safe.
StatusOr<WorkerProcess> LaunchWorker(const LaunchOptions& options);

// The environment a worker gets: the server's own, with the GPU list and the multicast
// switches (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1).
std::vector<std::string> WorkerEnvironment(const LaunchOptions& options);

// "0,1,3" for CUDA_VISIBLE_DEVICES.
std::string GpuList(const std::vector<int>& gpus);

// True when `pid` names a live (not zombie) process. Reaps it first when it is our exited
// child, so a worker left by an earlier JobService of this process reads as gone.
bool ProcessAlive(int pid);
// True when `pid` is alive and its command line is `<any> train --job <job_dir>`: a worker of
// this job, not some other process that reused the pid.
bool IsWorkerOf(int pid, const std::string& job_dir);
// Sends `sig` to the process group `pid` (falls back to the single process).
void SignalGroup(int pid, int sig);

// "exit code 1", "killed by SIGKILL", ... for a waitpid status.
std::string DescribeWaitStatus(int wait_status);
// The last `max_lines` lines of a text file ("" when unreadable), for failure reasons.
std::string TailOfFile(const std::string& path, int max_lines);

}  // namespace vlmd::jobs
