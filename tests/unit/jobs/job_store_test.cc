// JobStore: round trip of jobs and events through SQLite, and refusal of other schema versions.
#include "core/jobs/job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <string>

#include "core/base/file_util.h"

namespace vlmd::jobs {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/vlmd_store_test_XXXXXX";
  return mkdtemp(tmpl);
}

JobRecord SampleRecord() {
  JobRecord r;
  api::JobStatus& s = r.status;
  s.name = "latex-a";
  s.state = api::JobState::kRunning;
  s.spec.name = "latex-a";
  s.spec.model = "/models/qwen2-vl-2b";
  s.spec.datasets = {"/data/train.jsonl"};
  s.spec.gpus = 2;
  s.spec.priority = 5;
  s.gpus = {1, 3};
  s.attempts = 2;
  s.created_unix = 1795000000;  // 2026-11-18
  s.started_unix = 1795000100;
  s.step = 40;
  s.max_steps = 100;
  s.epoch = 0.4;
  s.train_metrics = {{"loss", 1.25}, {"learning_rate", 9e-5}};
  s.eval_metrics = {{"eval_loss", 1.5}};
  s.samples_per_second = 7.5;
  s.checkpoints = {{20, "/s/jobs/x/checkpoint-20", {{"eval_loss", 1.75}}, false},
                   {40, "/s/jobs/x/checkpoint-40", {{"eval_loss", 1.5}}, true}};
  s.best_checkpoint = "/s/jobs/x/checkpoint-40";
  s.job_dir = "/s/jobs/x";
  s.train_samples = 17739;
  s.val_samples = 179;
  s.skipped_samples = 3;
  s.validation_report = "2 files, 17918 lines";
  r.pid = 4242;
  return r;
}

TEST(JobStoreTest, RoundTripsJobsAndEvents) {
  std::string dir = TempDir();
  std::string db = JoinPath(dir, "jobs.db");
  JobRecord r = SampleRecord();
  {
    auto store = JobStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
    auto seq = (*store)->Insert(&r, {api::JobEvent::Type::kState, "VALIDATING", 1000});
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, 1);
    EXPECT_EQ(r.seq, 1);
    EXPECT_EQ(r.status.id, "sft-20261118-0001");
    r.status.step = 41;
    NewEvent train{api::JobEvent::Type::kTrainMetrics, "step 41", 2000};
    auto seq2 = (*store)->Save(r, &train);
    ASSERT_TRUE(seq2.ok()) << seq2.status();
    EXPECT_EQ(*seq2, 2);
    JobRecord second = SampleRecord();
    second.status.name = "latex-b";
    ASSERT_TRUE((*store)->Insert(&second, {api::JobEvent::Type::kState, "VALIDATING", 0}).ok());
    EXPECT_EQ(second.status.id, "sft-20261118-0002");
  }
  auto store = JobStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  auto all = (*store)->LoadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  const JobRecord& got = (*all)[0];
  const api::JobStatus& s = got.status;
  EXPECT_EQ(s.id, "sft-20261118-0001");
  EXPECT_EQ(s.state, api::JobState::kRunning);
  EXPECT_EQ(s.spec.model, "/models/qwen2-vl-2b");
  EXPECT_EQ(s.spec.priority, 5);
  EXPECT_EQ(s.gpus, (std::vector<int>{1, 3}));
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(got.pid, 4242);
  EXPECT_EQ(s.step, 41);
  EXPECT_DOUBLE_EQ(s.train_metrics.at("loss"), 1.25);
  ASSERT_EQ(s.checkpoints.size(), 2u);
  EXPECT_TRUE(s.checkpoints[1].best);
  EXPECT_DOUBLE_EQ(s.checkpoints[0].metrics.at("eval_loss"), 1.75);
  EXPECT_EQ(s.train_samples, 17739);
  EXPECT_EQ(s.validation_report, "2 files, 17918 lines");

  auto events = (*store)->EventsAfter(s, 0, 100);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].seq, 1);
  EXPECT_EQ((*events)[0].time_unix_ms, 1000);
  EXPECT_EQ((*events)[0].type, api::JobEvent::Type::kState);
  EXPECT_EQ((*events)[0].status.step, 40);  // the snapshot at that event
  EXPECT_EQ((*events)[1].type, api::JobEvent::Type::kTrainMetrics);
  EXPECT_EQ((*events)[1].message, "step 41");
  EXPECT_EQ((*events)[1].status.step, 41);
  EXPECT_EQ((*events)[1].status.spec.model, "/models/qwen2-vl-2b");
  auto after1 = (*store)->EventsAfter(s, 1, 100);
  ASSERT_TRUE(after1.ok());
  ASSERT_EQ(after1->size(), 1u);
  EXPECT_EQ((*after1)[0].seq, 2);
}

TEST(JobStoreTest, RefusesNewerSchemaNamingTheFile) {
  std::string db = JoinPath(TempDir(), "jobs.db");
  ASSERT_TRUE(JobStore::Open(db).ok());
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto store = JobStore::Open(db);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(db), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("schema version 2"), std::string::npos);
  EXPECT_NE(store.status().message().find("newer vlmd"), std::string::npos);
}

TEST(JobStoreTest, RefusesForeignDatabase) {
  std::string db = JoinPath(TempDir(), "other.db");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto store = JobStore::Open(db);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a vlmd job database"), std::string::npos);
}

TEST(JobStoreTest, RefusesNonSqliteFile) {
  std::string db = JoinPath(TempDir(), "jobs.db");
  ASSERT_TRUE(WriteFileAtomic(db, std::string(4096, 'x')).ok());
  auto store = JobStore::Open(db);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(db), std::string::npos) << store.status();
}

}  // namespace
}  // namespace vlmd::jobs
