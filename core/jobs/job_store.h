// The job database: one SQLite file (WAL mode) under the state directory with a table of jobs
// (one row per job, rewritten on every change) and an append-only table of events. Everything
// JobService reports can be rebuilt from it after a restart. The schema carries a version in
// `PRAGMA user_version`; opening a file of another version fails naming the file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/api/jobs.h"
#include "core/base/status.h"

struct sqlite3;

namespace vlmd::jobs {

inline constexpr int kJobStoreSchemaVersion = 1;

// One job as stored: its status (spec included) plus what only the server needs.
struct JobRecord {
  api::JobStatus status;
  int64_t seq = 0;  // assigned by Insert: FIFO order and the number in the id
  int pid = 0;      // the worker's pid while RUNNING (its process group id too), else 0
};

// An event to append; its seq is assigned by the store (one more than the job's last).
struct NewEvent {
  api::JobEvent::Type type = api::JobEvent::Type::kLog;
  std::string message;
  int64_t time_unix_ms = 0;  // 0 = now
};

// Thread-safe: one connection guarded by a mutex. No method calls back into the caller.
class JobStore {
 public:
  // Opens or creates `path`. FAILED_PRECONDITION naming the file when its schema version is
  // not kJobStoreSchemaVersion (a newer vlmd wrote it, or it is not a vlmd job database).
  static StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Assigns record->seq and (when empty) record->status.id = "sft-YYYYMMDD-NNNN", inserts the
  // row and its first event in one transaction. Returns the event's seq.
  StatusOr<int64_t> Insert(JobRecord* record, const NewEvent& event);
  // Rewrites the job's row and, when `event` is set, appends it, in one transaction. Returns
  // the appended event's seq (0 when none).
  StatusOr<int64_t> Save(const JobRecord& record, const NewEvent* event);
  // Every job, oldest first.
  StatusOr<std::vector<JobRecord>> LoadAll() const;
  // Events of job `base.id` with seq > from_seq, oldest first, at most `limit`. Each event's
  // status is rebuilt from its payload over `base` (which supplies spec, id and name).
  StatusOr<std::vector<api::JobEvent>> EventsAfter(const api::JobStatus& base, int64_t from_seq,
                                                   int limit) const;
  const std::string& path() const { return path_; }

 private:
  JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const std::string& sql) const;
  Status WriteRow(const JobRecord& record, bool insert);
  StatusOr<int64_t> AppendEvent(const std::string& job_id, const NewEvent& event,
                                const api::JobStatus& status);
  Status Transaction(const std::function<Status()>& body);

  mutable std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace vlmd::jobs
