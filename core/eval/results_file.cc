#include "core/eval/results_file.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vlmd::eval {

StatusOr<std::unique_ptr<OrderedResultsFile>> OrderedResultsFile::Create(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<OrderedResultsFile>(new OrderedResultsFile(file, path));
}

OrderedResultsFile::~OrderedResultsFile() { (void)Close(); }

void OrderedResultsFile::WriteLine(const std::string& line) {
  if (file_ == nullptr || !status_.ok()) return;
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF || std::fflush(file_) != 0) {
    status_ = absl::InternalError(absl::StrCat("writing ", path_, ": ", std::strerror(errno)));
  }
}

void OrderedResultsFile::Put(size_t index, std::string line) {
  std::lock_guard<std::mutex> lock(mu_);
  held_[index] = std::move(line);
  for (auto it = held_.begin(); it != held_.end() && it->first == next_; it = held_.erase(it)) {
    WriteLine(it->second);
    ++next_;
  }
}

Status OrderedResultsFile::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [index, line] : held_) WriteLine(line);
  held_.clear();
  if (file_ != nullptr && std::fclose(file_) != 0 && status_.ok()) {
    status_ = absl::InternalError(absl::StrCat("closing ", path_, ": ", std::strerror(errno)));
  }
  file_ = nullptr;
  return status_;
}

}  // namespace vlmd::eval
