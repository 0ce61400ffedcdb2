#include "core/jobs/scheduler.h"

#include <algorithm>

namespace vlmd::jobs {

void SortForScheduling(std::vector<QueuedJob>* queue) {
  std::stable_sort(queue->begin(), queue->end(), [](const QueuedJob& a, const QueuedJob& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.seq < b.seq;
  });
}

std::vector<Placement> Schedule(std::vector<QueuedJob> queue, const FreeResources& free) {
  SortForScheduling(&queue);
  std::set<int> gpus = free.gpus;
  int cpu_slots = free.cpu_slots;
  bool gpu_blocked = false, cpu_blocked = false;
  std::vector<Placement> out;
  for (const QueuedJob& job : queue) {
    if (job.gpus <= 0) {
      if (cpu_blocked) continue;
      if (cpu_slots == 0) {
        cpu_blocked = true;  // later CPU jobs wait behind this one
        continue;
      }
      --cpu_slots;
      out.push_back({job.id, {}});
      continue;
    }
    if (job.gpus > free.total_gpus || gpu_blocked) continue;
    if (static_cast<int>(gpus.size()) < job.gpus) {
      gpu_blocked = true;  // reserves what is free: nothing behind it takes a GPU
      continue;
    }
    Placement placement{job.id, {}};
    auto it = gpus.begin();
    for (int i = 0; i < job.gpus; ++i) placement.gpus.push_back(*it++);
    gpus.erase(gpus.begin(), it);
    out.push_back(std::move(placement));
  }
  return out;
}

}  // namespace vlmd::jobs
