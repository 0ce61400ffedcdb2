// Shared fixture of the JobManager tests: a temporary root (allowed root, state dir, model
// directory, data file), the test worker program, a plan file for it, and wait helpers.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/api/inference.h"
#include "core/base/file_util.h"
#include "core/jobs/job_manager.h"
#include "nlohmann/json.hpp"

namespace vlmd::jobs {

// An InferenceService that records LoadAdapter/AddModel calls. Only those and ListModels work.
class FakeInference : public api::InferenceService {
 public:
  Status Submit(api::InferRequest, std::shared_ptr<api::InferSink>,
                std::shared_ptr<api::CancelHandle>*) override {
    return absl::UnimplementedError("fake");
  }
  std::vector<api::ModelInfo> ListModels() const override { return models; }
  StatusOr<api::AdapterInfo> LoadAdapter(const std::string& name, const std::string& path,
                                         const std::string& model) override {
    loaded.push_back({name, path, model});
    return api::AdapterInfo{name, path, model};
  }
  Status UnloadAdapter(const std::string&) override { return absl::OkStatus(); }
  std::vector<api::AdapterInfo> ListAdapters() const override { return {}; }
  StatusOr<api::ModelInfo> AddModel(const api::ModelSpec& spec) override {
    added.push_back(spec);
    return api::ModelInfo{spec.name, spec.path, spec.device};
  }
  std::vector<api::EngineStats> Stats() const override { return {}; }
  void Shutdown(std::chrono::milliseconds) override {}

  std::vector<api::ModelInfo> models;
  struct Loaded {
    std::string name, path, model;
  };
  std::vector<Loaded> loaded;
  std::vector<api::ModelSpec> added;
};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vlmd_jobs_test_XXXXXX";
    root_ = mkdtemp(tmpl);
    model_dir_ = JoinPath(root_, "model");
    ASSERT_TRUE(MakeDirs(model_dir_).ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(model_dir_, "config.json"), "{}").ok());
    data_ = JoinPath(root_, "train.jsonl");
    ASSERT_TRUE(WriteFileAtomic(data_, "{}\n").ok());
    plan_path_ = JoinPath(root_, "plan.json");
    timeline_ = JoinPath(root_, "timeline.txt");
    WritePlan();
    setenv("VLMD_TEST_PLAN", plan_path_.c_str(), 1);
    setenv("VLMD_TEST_TIMELINE", timeline_.c_str(), 1);
    config_.state_dir = JoinPath(root_, "state");
    config_.allowed_roots = {root_};
    config_.worker_binary = VLMD_TEST_WORKER;
    config_.cpu_slots = 1;
    config_.max_attempts = 3;
    hooks_.stop_grace = std::chrono::milliseconds(3000);
    hooks_.check_data = [](const JobSpec&, const std::atomic<bool>&) {
      return StatusOr<DataCheckResult>(DataCheckResult{9, 1, 0, "1 file, 10 lines"});
    };
  }

  void TearDown() override {
    manager_.reset();
    std::string cmd = "rm -rf '" + root_ + "'";
    if (!HasFailure()) (void)std::system(cmd.c_str());
  }

  // Sets the test worker's behaviour for job `name` (see test_worker.cc).
  void Plan(const std::string& name, nlohmann::json plan) {
    plans_[name] = std::move(plan);
    WritePlan();
  }
  void WritePlan() { ASSERT_TRUE(WriteFileAtomic(plan_path_, plans_.dump()).ok()); }

  void StartManager(FakeInference* inference = nullptr) {
    auto m = JobManager::Create(config_, inference, hooks_);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
  }

  JobSpec Spec(const std::string& name, int gpus = 0) {
    JobSpec spec;
    spec.name = name;
    spec.model = model_dir_;
    spec.datasets = {data_};
    spec.gpus = gpus;
    spec.save_steps = 2;
    return spec;
  }

  std::string Submit(const JobSpec& spec) {
    auto status = manager_->StartSftJob(spec);
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? status->id : "";
  }

  // Polls GetJob until `pred` holds or `seconds` pass; returns the last status.
  api::JobStatus WaitFor(const std::string& id, std::function<bool(const api::JobStatus&)> pred,
                         double seconds = 20) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    api::JobStatus last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = manager_->GetJob(id);
      if (s.ok()) {
        last = *s;
        if (pred(last)) return last;
        if (api::IsTerminal(last.state)) break;  // it will not change any more
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "gave up waiting on job " << id << " (state " << api::JobStateName(last.state)
                  << ", reason: " << last.reason << ")";
    return last;
  }
  api::JobStatus WaitState(const std::string& id, api::JobState state, double seconds = 20) {
    return WaitFor(
        id, [state](const api::JobStatus& s) { return s.state == state; }, seconds);
  }

  // Lines of <job_dir>/attempts.txt written by the test worker.
  std::vector<std::string> Attempts(const api::JobStatus& s) {
    std::vector<std::string> lines;
    std::ifstream in(JoinPath(s.job_dir, "attempts.txt"));
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  std::string root_, model_dir_, data_, plan_path_, timeline_;
  nlohmann::json plans_ = nlohmann::json::object();
  api::JobServiceConfig config_;
  JobManagerHooks hooks_;
  std::unique_ptr<JobManager> manager_;
};

}  // namespace vlmd::jobs
