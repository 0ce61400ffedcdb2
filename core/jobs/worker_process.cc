#include "core/jobs/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
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

// Closes descriptors [from, to] (async-signal-safe).
void CloseRange(unsigned from, unsigned to) {
  if (from > to) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, from, to, 0U) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (long fd = from; fd < max && fd <= static_cast<long>(to); ++fd) close(static_cast<int>(fd));
}

// The child side: never returns. Reports an exec failure's errno on `err_fd`. Only
// async-signal-safe calls: the parent may have other threads.
[[noreturn]] void RunChild(int out_fd, int log_fd, int err_fd, char* const argv[],
                           char* const envp[]) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  // Move the descriptors out of the way first, in case any of them is 0, 1 or 2.
  int out = fcntl(out_fd, F_DUPFD, 10);
  int log = fcntl(log_fd, F_DUPFD, 10);
  int err = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
  int null_fd = open("/dev/null", O_RDONLY);
  if (out < 0 || log < 0 || err < 0 || null_fd < 0) _exit(127);
  dup2(null_fd, 0);
  dup2(out, 1);
  dup2(log, 2);
  CloseRange(3, static_cast<unsigned>(err) - 1);
  CloseRange(static_cast<unsigned>(err) + 1, ~0U);
  execve(argv[0], argv, envp);
  int e = errno;
  ssize_t ignored = write(err, &e, sizeof(e));
  (void)ignored;
  _exit(127);
}

std::string ReadProcFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

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

StatusOr<WorkerProcess> LaunchWorker(const LaunchOptions& options) {
  int log_fd = open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", options.log_path, ": ",
                                            strerror(errno)));
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
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
  pid_t pid = fork();
  if (pid == 0) RunChild(out[1], log_fd, err[1], argv.data(), envp.data());
  int fork_errno = errno;
  close(out[1]);
  close(err[1]);
  close(log_fd);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return absl::ResourceExhaustedError(absl::StrCat("fork: ", strerror(fork_errno)));
  }
  setpgid(pid, pid);  // also done in the child; whichever runs first wins the race
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(err[0]);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);
    close(out[0]);
    return absl::FailedPreconditionError(absl::StrCat("cannot start worker ", options.binary,
                                                      ": ", strerror(child_errno)));
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
