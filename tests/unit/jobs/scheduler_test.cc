// Scheduling policy: priority, FIFO, disjoint GPU sets, CPU slots, no starvation of a big job.
#include "core/jobs/scheduler.h"

#include <gtest/gtest.h>

namespace vlmd::jobs {
namespace {

FreeResources Free(std::set<int> gpus, int cpu_slots, int total) {
  FreeResources f;
  f.gpus = std::move(gpus);
  f.cpu_slots = cpu_slots;
  f.total_gpus = total;
  return f;
}

std::vector<std::string> Ids(const std::vector<Placement>& placements) {
  std::vector<std::string> ids;
  for (const Placement& p : placements) ids.push_back(p.id);
  return ids;
}

TEST(SchedulerTest, HigherPriorityFirstThenFifo) {
  std::vector<QueuedJob> queue = {{"a", 1, 0, 1}, {"b", 1, 5, 2}, {"c", 1, 0, 3}, {"d", 1, 5, 4}};
  auto placed = Schedule(queue, Free({0, 1, 2}, 0, 4));
  EXPECT_EQ(Ids(placed), (std::vector<std::string>{"b", "d", "a"}));
  EXPECT_EQ(placed[0].gpus, (std::vector<int>{0}));
  EXPECT_EQ(placed[1].gpus, (std::vector<int>{1}));
  EXPECT_EQ(placed[2].gpus, (std::vector<int>{2}));
}

TEST(SchedulerTest, DisjointGpuSetsFromTheFreeOnes) {
  std::vector<QueuedJob> queue = {{"a", 2, 0, 1}, {"b", 1, 0, 2}, {"c", 2, 0, 3}};
  auto placed = Schedule(queue, Free({1, 3, 4, 6}, 0, 8));
  ASSERT_EQ(Ids(placed), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(placed[0].gpus, (std::vector<int>{1, 3}));
  EXPECT_EQ(placed[1].gpus, (std::vector<int>{4}));
  // c needs 2, one is left: it waits (and reserves GPU 6).
}

TEST(SchedulerTest, BigJobIsNotStarvedBySmallerLaterJobs) {
  // 4 GPUs, 2 busy. "big" needs 4 and was submitted before the small ones: the free GPUs are
  // held for it, so the small jobs behind it do not start.
  std::vector<QueuedJob> queue = {{"big", 4, 0, 1}, {"small1", 1, 0, 2}, {"small2", 1, 0, 3}};
  EXPECT_TRUE(Schedule(queue, Free({2, 3}, 0, 4)).empty());
  auto placed = Schedule(queue, Free({0, 1, 2, 3}, 0, 4));
  ASSERT_EQ(Ids(placed), (std::vector<std::string>{"big"}));
  EXPECT_EQ(placed[0].gpus, (std::vector<int>{0, 1, 2, 3}));
}

TEST(SchedulerTest, HigherPriorityJobStillOvertakesAWaitingBigJob) {
  std::vector<QueuedJob> queue = {{"big", 4, 0, 1}, {"urgent", 1, 9, 2}};
  auto placed = Schedule(queue, Free({2, 3}, 0, 4));
  EXPECT_EQ(Ids(placed), (std::vector<std::string>{"urgent"}));
}

TEST(SchedulerTest, JobLargerThanThePoolIsSkippedAndReservesNothing) {
  std::vector<QueuedJob> queue = {{"huge", 9, 0, 1}, {"small", 1, 0, 2}};
  auto placed = Schedule(queue, Free({0, 1}, 0, 2));
  EXPECT_EQ(Ids(placed), (std::vector<std::string>{"small"}));
}

TEST(SchedulerTest, CpuSlotsAreSeparateFromGpus) {
  std::vector<QueuedJob> queue = {
      {"gpu-big", 2, 0, 1}, {"cpu1", 0, 0, 2}, {"cpu2", 0, 0, 3}, {"cpu3", 0, 0, 4}};
  auto placed = Schedule(queue, Free({0}, 2, 2));
  // The waiting GPU job holds back no CPU job; two CPU slots take two CPU jobs in FIFO order.
  EXPECT_EQ(Ids(placed), (std::vector<std::string>{"cpu1", "cpu2"}));
  EXPECT_TRUE(placed[0].gpus.empty());
}

TEST(SchedulerTest, NoCpuSlotNoCpuJob) {
  std::vector<QueuedJob> queue = {{"cpu1", 0, 0, 1}, {"g", 1, 0, 2}};
  auto placed = Schedule(queue, Free({5}, 0, 1));
  ASSERT_EQ(Ids(placed), (std::vector<std::string>{"g"}));
  EXPECT_EQ(placed[0].gpus, (std::vector<int>{5}));
}

TEST(SchedulerTest, ManyGpus) {
  std::set<int> all;
  for (int g = 0; g < 64; ++g) all.insert(g);
  std::vector<QueuedJob> queue;
  for (int i = 0; i < 20; ++i) queue.push_back({"j" + std::to_string(i), 3, 0, i + 1});
  auto placed = Schedule(queue, Free(all, 0, 64));
  ASSERT_EQ(placed.size(), 21u - 1u);  // 20 jobs x 3 GPUs = 60 <= 64
  std::set<int> used;
  for (const Placement& p : placed) {
    ASSERT_EQ(p.gpus.size(), 3u);
    for (int g : p.gpus) EXPECT_TRUE(used.insert(g).second) << "GPU " << g << " given twice";
  }
}

TEST(SchedulerTest, EmptyQueueOrNoResources) {
  EXPECT_TRUE(Schedule({}, Free({0, 1}, 1, 2)).empty());
  EXPECT_TRUE(Schedule({{"a", 1, 0, 1}, {"b", 0, 0, 2}}, Free({}, 0, 2)).empty());
}

}  // namespace
}  // namespace vlmd::jobs
