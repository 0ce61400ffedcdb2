#include "core/jobs/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace vlmd::jobs {
namespace {

// Environment variables the server always sets for workers (multicast off: see GPU notes).
const std::pair<const char*, const char*> kFixedEnv[] = {
    {"NCCL_NVLS_ENABLE", "0"},
    {"TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"},
    {"NVSHMEM_DISABLE_NVLS", "1"},
};

std::string ReadProcFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// File actions and attributes of a worker's spawn: stdin /dev/null, stdout the pipe, stderr
// the log, every other descriptor closed, a new process group, default signal handling.
class SpawnSetup {
 public:
  SpawnSetup(int out_fd, int log_fd) {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
    posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions_, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions_, log_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setsigdefault(&attr_, &defaults);
    posix_spawnattr_setpgroup(&attr_, 0);
    posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                         POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

}  // namespace

std::string GpuList(const std::vector<int>& gpus) { return absl::StrJoin(gpus, ","); }

std::vector<std::string> WorkerEnvironment(const LaunchOptions& options) {
  std::vector<std::pair<std::string, std::string>> set = {
      {"CUDA_VISIBLE_DEVICES", GpuList(options.gpus)}};
  for (const auto& [k, v] : kFixedEnv) set.emplace_back(k, v);
  for (const auto& kv : options.extra_env) set.push_back(kv);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& kv : set) overridden = overridden || kv.first == key;
    if (!overridden) env.push_back(entry);
  }
  for (const auto& [k, v] : set) env.push_back(absl::StrCat(k, "=", v));
  return env;
}

// posix_spawn (vfork-style in glibc) rather than fork: the server may hold tens of GB of
// model weights, and copying its page tables for every worker start is slow and can fail
// under strict overcommit. glibc reports an exec failure as posix_spawn's return value.
StatusOr<WorkerProcess> LaunchWorker(const LaunchOptions& options) {
  int log_fd = open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", options.log_path, ": ", strerror(errno)));
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(log_fd);
    return absl::ResourceExhaustedError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> args = {options.binary, "train", "--job", options.job_dir};
  std::vector<std::string> env = WorkerEnvironment(options);
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc;
  {
    SpawnSetup setup(out[1], log_fd);
    rc = posix_spawn(&pid, options.binary.c_str(), setup.actions(), setup.attr(), argv.data(),
                     envp.data());
  }
  close(out[1]);
  close(log_fd);
  if (rc != 0) {
    close(out[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start worker ", options.binary, ": ", strerror(rc)));
  }
  return WorkerProcess{pid, out[0]};
}

bool ProcessAlive(int pid) {
  if (pid <= 0) return false;
  int status;
  if (waitpid(pid, &status, WNOHANG) == pid) return false;  // our child, now reaped
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::string stat = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return !stat.empty();
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

bool IsWorkerOf(int pid, const std::string& job_dir) {
  if (!ProcessAlive(pid)) return false;
  std::string cmdline = ReadProcFile(absl::StrCat("/proc/", pid, "/cmdline"));
  std::vector<std::string> args = absl::StrSplit(cmdline, '\0');
  if (!args.empty() && args.back().empty()) args.pop_back();
  return args.size() == 4 && args[1] == "train" && args[2] == "--job" && args[3] == job_dir;
}

void SignalGroup(int pid, int sig) {
  if (pid <= 0) return;
  if (kill(-pid, sig) != 0) kill(pid, sig);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? absl::StrCat("killed by SIG", abbrev) : absl::StrCat("killed by signal ", sig);
  }
  return absl::StrCat("wait status ", wait_status);
}

std::string TailOfFile(const std::string& path, int max_lines) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line.size() > 500 ? line.substr(0, 500) + "..." : line);
    if (static_cast<int>(lines.size()) > max_lines) lines.pop_front();
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace vlmd::jobs
