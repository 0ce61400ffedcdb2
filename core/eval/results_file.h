// A results.jsonl written in sample order while results arrive in any order (generation
// requests finish out of order): each line is held until every earlier one is written, then
// appended and flushed, so a crash keeps a complete prefix. Thread-safe.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/base/status.h"

namespace vlmd::eval {

class OrderedResultsFile {
 public:
  // Creates (truncates) `path`. INTERNAL naming the path when it cannot.
  static StatusOr<std::unique_ptr<OrderedResultsFile>> Create(const std::string& path);
  ~OrderedResultsFile();

  // Line `index` (0-based, each index once; no newline).
  void Put(size_t index, std::string line);
  // Writes what is held (gaps are skipped) and closes; the first write error, if any.
  Status Close();

 private:
  OrderedResultsFile(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  void WriteLine(const std::string& line);  // mu_ held

  std::mutex mu_;
  std::FILE* file_;
  std::string path_;
  size_t next_ = 0;                     // guarded by mu_
  std::map<size_t, std::string> held_;  // guarded by mu_
  Status status_;                       // guarded by mu_
};

}  // namespace vlmd::eval
