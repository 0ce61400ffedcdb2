// Which queued jobs start now, and on which GPUs: pure logic, no threads, no I/O.
//
// Policy (one pass over the queue, in order of priority, higher first, then FIFO by
// submission sequence):
//  - A job asking for 0 GPUs takes a CPU slot if one is free.
//  - A job asking for N > 0 GPUs takes the N lowest-numbered free GPUs if N are free.
//  - Head-of-line reservation: the first GPU job that does not fit reserves every GPU that is
//    free now, and no job behind it in the order may take a GPU in this pass. A job that needs
//    the whole pool therefore waits only for running jobs to finish: a stream of small jobs
//    submitted after it cannot starve it. Jobs ahead of it (higher priority) still go first,
//    which is what priority means. The same rule applies to CPU slots separately, so a waiting
//    GPU job never holds back a CPU job and vice versa.
//  - A job asking for more GPUs than the pool holds can never run; it is skipped (and does not
//    reserve anything). JobService fails such jobs at submission, so this is a safety net.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace vlmd::jobs {

// A job waiting in QUEUED.
struct QueuedJob {
  std::string id;
  int gpus = 0;      // 0 = a CPU slot
  int priority = 0;  // higher first
  int64_t seq = 0;   // submission order (FIFO among equal priorities)
};

// A start decision: `id` runs now on `gpus` (empty for a CPU job).
struct Placement {
  std::string id;
  std::vector<int> gpus;
};

// The resources free at this moment.
struct FreeResources {
  std::set<int> gpus;  // free training GPU ids
  int cpu_slots = 0;   // free CPU slots
  int total_gpus = 0;  // size of the training pool (free or not)
};

// Returns the jobs to start now, in start order, with disjoint GPU sets taken from
// `free.gpus`. Pure and thread-compatible.
std::vector<Placement> Schedule(std::vector<QueuedJob> queue, const FreeResources& free);

// Sorts jobs into scheduling order: priority descending, then seq ascending.
void SortForScheduling(std::vector<QueuedJob>* queue);

}  // namespace vlmd::jobs
