// End to end: jobs on the real server and worker when things go wrong or wait — cancel, a
// worker killed with SIGKILL, a server restarted with a job queued and one running, a data set
// with a bad line, and two jobs sharing one CPU slot.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/common/http_client.h"
#include "tests/e2e/job_harness.h"

namespace vlmd::e2e {
namespace {

namespace v1 = vlmd::v1;
using json = nlohmann::json;

// Submits a job with `vlmctl sft --json`; returns its id ("" after a failure).
std::string Submit(const ServerProcess& server, const std::string& name, const std::string& data,
                   int steps, int every) {
  std::vector<std::string> args = {"sft", "--name", name, "--json"};
  std::vector<std::string> flags = QuickJobFlags(data, steps, every);
  args.insert(args.end(), flags.begin(), flags.end());
  ProcessResult r = Vlmctl(server, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() && j.contains("job") ? j["job"].value("id", "") : "";
}

// The time (ms) of the job's first state event into `state`, 0 when there is none.
int64_t StateTime(const std::vector<v1::JobEvent>& events, v1::JobState state) {
  for (const v1::JobEvent& e : events) {
    if (e.type() == v1::JOB_EVENT_TYPE_STATE && e.status().state() == state) {
      return e.time_unix_ms();
    }
  }
  return 0;
}

std::vector<v1::JobState> States(const std::vector<v1::JobEvent>& events) {
  std::vector<v1::JobState> states;
  for (const v1::JobEvent& e : events) {
    if (e.type() == v1::JOB_EVENT_TYPE_STATE) states.push_back(e.status().state());
  }
  return states;
}

bool AnyMessage(const std::vector<v1::JobEvent>& events, const std::string& text) {
  for (const v1::JobEvent& e : events) {
    if (e.message().find(text) != std::string::npos) return true;
  }
  return false;
}

class JobFaultsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    WriteImageDataset(dir_->path(), 12);
    server_ =
        ServerProcess::Start(JobServerYaml(dir_->path()), dir_->path(), {}, &error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << error_;
    stub_ = JobsStub(*server_);
  }
  static std::string Data() { return dir_->Join("train.jsonl"); }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string error_;
  std::unique_ptr<v1::Jobs::Stub> stub_;
};

TempDir* JobFaultsE2E::dir_ = nullptr;
ServerProcess* JobFaultsE2E::server_ = nullptr;
std::string JobFaultsE2E::error_;

TEST_F(JobFaultsE2E, CancelStopsTheWorkerAndKeepsACheckpoint) {
  std::string id = Submit(*server_, "long", Data(), 400, 100);
  ASSERT_FALSE(id.empty());
  v1::JobStatus job = WaitForJob(*stub_, id, [](const v1::JobStatus& j) {
    return j.state() == v1::JOB_STATE_RUNNING && j.step() >= 2;
  });
  ASSERT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  std::string metrics = testing::HttpGet(server_->metrics_port(), "/metrics").body;
  EXPECT_NE(metrics.find("vlmd_job_step{job=\"long\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vlmd_jobs{state=\"running\"} 1"), std::string::npos) << metrics;
  ProcessResult cancel = Vlmctl(*server_, {"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_NE(cancel.out.find("cancel requested"), std::string::npos) << cancel.out;
  job = WaitForState(*stub_, id, v1::JOB_STATE_CANCELLED, 60);
  EXPECT_EQ(job.reason(), "cancelled by request");
  EXPECT_LT(job.step(), 400);
  ASSERT_GE(job.checkpoints_size(), 1);  // saved at the step it stopped on
  EXPECT_FALSE(ReadFile(job.checkpoints(0).path() + "/adapter_model.safetensors").empty());
  EXPECT_EQ(WorkerPid(job.job_dir()), 0);
  metrics = testing::HttpGet(server_->metrics_port(), "/metrics").body;
  EXPECT_EQ(metrics.find("vlmd_job_step{job=\"long\"}"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vlmd_jobs{state=\"cancelled\"} 1"), std::string::npos) << metrics;
}

TEST_F(JobFaultsE2E, AWorkerKilledWithSigkillResumesAndFinishes) {
  std::string id = Submit(*server_, "crashy", Data(), 12, 4);
  ASSERT_FALSE(id.empty());
  v1::JobStatus job = WaitForJob(*stub_, id, [](const v1::JobStatus& j) {
    return j.checkpoints_size() >= 1 && j.step() >= 5;
  });
  int pid = WorkerPid(job.job_dir());
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  job = WaitForState(*stub_, id, v1::JOB_STATE_SUCCEEDED, 180);
  EXPECT_EQ(job.attempts(), 2);
  EXPECT_EQ(job.step(), 12);
  std::vector<v1::JobEvent> events = JobEvents(*stub_, id);
  EXPECT_TRUE(
      AnyMessage(events, "killed by SIGKILL; restarting from " + job.job_dir() + "/checkpoint-"));
  EXPECT_TRUE(AnyMessage(events, "(attempt 2 of 3), resuming from"));
}

TEST_F(JobFaultsE2E, ABadDataLineFailsInValidatingWithFileAndLine) {
  std::string bad = dir_->Join("bad.jsonl");
  std::string good = ReadLines(Data())[0];
  WriteFile(bad, good + "\n" + good + "\n{\"query\": \"<image>oops\", \"response\": \n" + good);
  ProcessResult r = Vlmctl(
      *server_, {"sft", "--model", TinyModelDir(), "--dataset", bad, "--gpus", "0", "--watch"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("FAILED: " + bad + ":3: "), std::string::npos) << r.err;
  std::string id = r.out.substr(0, r.out.find(' '));
  v1::JobStatus job;
  ASSERT_TRUE(GetJob(*stub_, id, &job).ok()) << r.out;
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.reason().find(bad + ":3: "), 0u) << job.reason();
  EXPECT_EQ(job.attempts(), 0);
  EXPECT_EQ(States(JobEvents(*stub_, id)),
            (std::vector<v1::JobState>{v1::JOB_STATE_VALIDATING, v1::JOB_STATE_FAILED}));
}

TEST_F(JobFaultsE2E, TwoJobsWithOneCpuSlotRunOneAfterTheOther) {
  std::string first = Submit(*server_, "first", Data(), 4, 4);
  std::string second = Submit(*server_, "second", Data(), 4, 4);
  ASSERT_FALSE(first.empty() || second.empty());
  WaitForState(*stub_, first, v1::JOB_STATE_SUCCEEDED);
  WaitForState(*stub_, second, v1::JOB_STATE_SUCCEEDED);
  std::vector<v1::JobEvent> a = JobEvents(*stub_, first), b = JobEvents(*stub_, second);
  EXPECT_EQ(States(b), (std::vector<v1::JobState>{v1::JOB_STATE_VALIDATING, v1::JOB_STATE_QUEUED,
                                                  v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED}));
  int64_t first_done = StateTime(a, v1::JOB_STATE_SUCCEEDED);
  int64_t second_starts = StateTime(b, v1::JOB_STATE_RUNNING);
  ASSERT_GT(first_done, 0);
  EXPECT_GE(second_starts, first_done) << "the second job started before the first ended";
}

// A server stopped (SIGTERM) with one job running and one queued, then started again on the
// same state directory: the old worker is stopped and resumed from its checkpoint, and the
// queued job runs after it.
TEST(JobRestartE2E, QueuedAndRunningJobsAreRecovered) {
  TempDir dir;
  WriteImageDataset(dir.path(), 12);
  std::string yaml = JobServerYaml(dir.path()), error;
  std::unique_ptr<ServerProcess> server = ServerProcess::Start(yaml, dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  // Long enough that the worker is still training when the new server comes up.
  std::string running = Submit(*server, "running", dir.Join("train.jsonl"), 40, 5);
  std::string queued = Submit(*server, "queued", dir.Join("train.jsonl"), 4, 4);
  auto stub = JobsStub(*server);
  v1::JobStatus job = WaitForJob(*stub, running, [](const v1::JobStatus& j) {
    return j.checkpoints_size() >= 1 && j.step() >= 5;
  });
  v1::JobStatus waiting;
  ASSERT_TRUE(GetJob(*stub, queued, &waiting).ok());
  EXPECT_EQ(waiting.state(), v1::JOB_STATE_QUEUED);
  int worker = WorkerPid(job.job_dir());
  ASSERT_GT(worker, 0);
  EXPECT_EQ(server->Stop(), 0) << server->Log();
  EXPECT_EQ(kill(worker, 0), 0) << "the worker should outlive the server";
  server = ServerProcess::Start(yaml, dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  stub = JobsStub(*server);
  job = WaitForState(*stub, running, v1::JOB_STATE_SUCCEEDED, 240);
  EXPECT_GE(job.attempts(), 2);
  EXPECT_EQ(job.step(), 40);
  EXPECT_EQ(WaitForState(*stub, queued, v1::JOB_STATE_SUCCEEDED, 120).step(), 4);
  std::vector<v1::JobEvent> events = JobEvents(*stub, running);
  EXPECT_TRUE(
      AnyMessage(events, "server restarted: stopping worker pid " + std::to_string(worker)));
  EXPECT_TRUE(AnyMessage(events, "resuming from " + job.job_dir() + "/checkpoint-"));
  EXPECT_EQ(WorkerPid(job.job_dir()), 0);
}

}  // namespace
}  // namespace vlmd::e2e
