#include "core/jobs/job_store.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/jobs/status_json.h"
#include "nlohmann/json.hpp"

namespace vlmd::jobs {
namespace {

using api::JobStatus;

constexpr const char* kSchema = R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  spec TEXT NOT NULL,
  reason TEXT NOT NULL,
  gpus TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  created_unix INTEGER NOT NULL,
  started_unix INTEGER NOT NULL,
  finished_unix INTEGER NOT NULL,
  progress TEXT NOT NULL);
CREATE TABLE events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  time_unix_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (job_id, seq));
)sql";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Status status(const std::string& path) const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(path, ": ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int Step() { return sqlite3_step(stmt_); }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status StepDone(Stmt& stmt, sqlite3* db, const std::string& path) {
  int rc = stmt.Step();
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(path, ": ", sqlite3_errmsg(db)));
}

std::string MakeId(int64_t seq, int64_t created_unix) {
  std::time_t t = static_cast<std::time_t>(created_unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return absl::StrFormat("sft-%04d%02d%02d-%04d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         seq);
}

StatusOr<JobRecord> RowToRecord(const Stmt& row, const std::string& path) {
  JobRecord r;
  JobStatus& s = r.status;
  s.id = row.Text(0);
  r.seq = row.Int(1);
  s.name = row.Text(2);
  std::string source = absl::StrCat(path, ": job ", s.id);
  if (!ParseJobState(row.Text(3), &s.state)) {
    return absl::DataLossError(absl::StrCat(source, ": unknown state \"", row.Text(3), "\""));
  }
  ASSIGN_OR_RETURN(s.spec, JobSpec::FromJson(row.Text(4), source));
  s.reason = row.Text(5);
  nlohmann::json gpus = nlohmann::json::parse(row.Text(6), nullptr, false);
  if (!gpus.is_array()) return absl::DataLossError(absl::StrCat(source, ": bad gpus column"));
  for (const auto& g : gpus) s.gpus.push_back(g.get<int>());
  s.attempts = static_cast<int>(row.Int(7));
  r.pid = static_cast<int>(row.Int(8));
  s.created_unix = row.Int(10);
  s.started_unix = row.Int(11);
  s.finished_unix = row.Int(12);
  RETURN_IF_ERROR(ProgressFromJson(row.Text(13), source, &s));
  return r;
}

}  // namespace

StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open job database ", path, ": ", msg));
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  Stmt version(db, "PRAGMA user_version");
  RETURN_IF_ERROR(version.status(path));
  if (version.Step() != SQLITE_ROW) return version.status(path);
  int64_t found = version.Int(0);
  Stmt tables(db, "SELECT COUNT(*) FROM sqlite_master");
  RETURN_IF_ERROR(tables.status(path));
  tables.Step();
  if (found == 0 && tables.Int(0) == 0) {
    RETURN_IF_ERROR(store->Exec(absl::StrCat(
        "BEGIN;", kSchema, "PRAGMA user_version=", kJobStoreSchemaVersion, ";COMMIT;")));
  } else if (found != kJobStoreSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("job database ", path, " has schema version ", found,
                     "; this vlmd reads version ", kJobStoreSchemaVersion,
                     found > kJobStoreSchemaVersion ? " (written by a newer vlmd: upgrade vlmd)"
                                                    : " (not a vlmd job database?)",
                     "; move the file away to start with an empty job list"));
  }
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

Status JobStore::Exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return absl::InternalError(absl::StrCat(path_, ": ", msg));
  }
  return absl::OkStatus();
}

Status JobStore::Transaction(const std::function<Status()>& body) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status status = body();
  if (!status.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  return Exec("COMMIT");
}

Status JobStore::WriteRow(const JobRecord& r, bool insert) {
  const char* sql =
      insert
          ? "INSERT INTO jobs (name, state, spec, reason, gpus, attempts, pid, priority, "
            "created_unix, started_unix, finished_unix, progress, id, seq) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
          : "UPDATE jobs SET name=?1, state=?2, spec=?3, reason=?4, gpus=?5, attempts=?6, pid=?7, "
            "priority=?8, created_unix=?9, started_unix=?10, finished_unix=?11, progress=?12 "
            "WHERE id=?13 AND seq=?14";
  const JobStatus& s = r.status;
  Stmt stmt(db_, sql);
  RETURN_IF_ERROR(stmt.status(path_));
  stmt.Bind(1, s.name);
  stmt.Bind(2, std::string(api::JobStateName(s.state)));
  stmt.Bind(3, s.spec.ToJson());
  stmt.Bind(4, s.reason);
  stmt.Bind(5, nlohmann::json(s.gpus).dump());
  stmt.Bind(6, int64_t{s.attempts});
  stmt.Bind(7, int64_t{r.pid});
  stmt.Bind(8, int64_t{s.spec.priority});
  stmt.Bind(9, s.created_unix);
  stmt.Bind(10, s.started_unix);
  stmt.Bind(11, s.finished_unix);
  stmt.Bind(12, ProgressToJson(s));
  stmt.Bind(13, s.id);
  stmt.Bind(14, r.seq);
  RETURN_IF_ERROR(StepDone(stmt, db_, path_));
  if (!insert && sqlite3_changes(db_) != 1) {
    return absl::NotFoundError(absl::StrCat(path_, ": no job ", s.id));
  }
  return absl::OkStatus();
}

StatusOr<int64_t> JobStore::AppendEvent(const std::string& job_id, const NewEvent& event,
                                        const JobStatus& status) {
  Stmt last(db_, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id=?1");
  RETURN_IF_ERROR(last.status(path_));
  last.Bind(1, job_id);
  RETURN_IF_ERROR(StepDone(last, db_, path_));
  int64_t seq = last.Int(0) + 1;
  Stmt insert(db_,
              "INSERT INTO events (job_id, seq, time_unix_ms, type, payload) "
              "VALUES (?1, ?2, ?3, ?4, ?5)");
  RETURN_IF_ERROR(insert.status(path_));
  insert.Bind(1, job_id);
  insert.Bind(2, seq);
  insert.Bind(3, event.time_unix_ms != 0 ? event.time_unix_ms : NowMs());
  insert.Bind(4, std::string(EventTypeName(event.type)));
  insert.Bind(5, EventPayloadToJson(event.message, status));
  RETURN_IF_ERROR(StepDone(insert, db_, path_));
  return seq;
}

StatusOr<int64_t> JobStore::Insert(JobRecord* record, const NewEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t event_seq = 0;
  RETURN_IF_ERROR(Transaction([&]() -> Status {
    Stmt next(db_, "SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs");
    RETURN_IF_ERROR(next.status(path_));
    RETURN_IF_ERROR(StepDone(next, db_, path_));
    record->seq = next.Int(0);
    if (record->status.id.empty()) {
      record->status.id = MakeId(record->seq, record->status.created_unix);
    }
    RETURN_IF_ERROR(WriteRow(*record, /*insert=*/true));
    ASSIGN_OR_RETURN(event_seq, AppendEvent(record->status.id, event, record->status));
    return absl::OkStatus();
  }));
  return event_seq;
}

StatusOr<int64_t> JobStore::Save(const JobRecord& record, const NewEvent* event) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t event_seq = 0;
  RETURN_IF_ERROR(Transaction([&]() -> Status {
    RETURN_IF_ERROR(WriteRow(record, /*insert=*/false));
    if (event != nullptr) {
      ASSIGN_OR_RETURN(event_seq, AppendEvent(record.status.id, *event, record.status));
    }
    return absl::OkStatus();
  }));
  return event_seq;
}

StatusOr<std::vector<JobRecord>> JobStore::LoadAll() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_,
            "SELECT id, seq, name, state, spec, reason, gpus, attempts, pid, priority, "
            "created_unix, started_unix, finished_unix, progress FROM jobs ORDER BY seq");
  RETURN_IF_ERROR(stmt.status(path_));
  std::vector<JobRecord> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(JobRecord r, RowToRecord(stmt, path_));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_)));
  return out;
}

StatusOr<std::vector<api::JobEvent>> JobStore::EventsAfter(const JobStatus& base, int64_t from_seq,
                                                           int limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt stmt(db_,
            "SELECT seq, time_unix_ms, type, payload FROM events WHERE job_id=?1 AND seq>?2 "
            "ORDER BY seq LIMIT ?3");
  RETURN_IF_ERROR(stmt.status(path_));
  stmt.Bind(1, base.id);
  stmt.Bind(2, from_seq);
  stmt.Bind(3, int64_t{limit});
  std::vector<api::JobEvent> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    api::JobEvent e;
    e.seq = stmt.Int(0);
    e.time_unix_ms = stmt.Int(1);
    if (!ParseEventType(stmt.Text(2), &e.type)) {
      return absl::DataLossError(absl::StrCat(path_, ": event ", e.seq, " of job ", base.id,
                                              ": unknown type \"", stmt.Text(2), "\""));
    }
    RETURN_IF_ERROR(EventPayloadFromJson(stmt.Text(3), base, &e));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return absl::InternalError(absl::StrCat(path_, ": ", sqlite3_errmsg(db_)));
  return out;
}

}  // namespace vlmd::jobs
