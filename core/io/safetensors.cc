#include "core/io/safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/file_util.h"
#include "nlohmann/json.hpp"

namespace vlmd {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeEntry {
  DType dtype;
  const char* name;
  int size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::kF64, "F64", 8}, {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},  {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
};

Status HeaderError(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, ": ", what));
}

// Parses one tensor entry of the header into `view` (offsets relative to the data section).
Status ParseEntry(const std::string& path, const std::string& name, const json& entry,
                  uint64_t data_size, TensorView* view, uint64_t offsets[2]) {
  auto bad = [&](const std::string& what) {
    return HeaderError(path, absl::StrCat("tensor '", name, "': ", what));
  };
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    return bad("entry needs dtype, shape and data_offsets");
  }
  if (!entry["dtype"].is_string()) return bad("dtype is not a string");
  StatusOr<DType> dtype = ParseDType(entry["dtype"].get<std::string>());
  if (!dtype.ok()) return bad(std::string(dtype.status().message()));
  const json& shape = entry["shape"];
  const json& offs = entry["data_offsets"];
  if (!shape.is_array()) return bad("shape is not an array");
  if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
      !offs[1].is_number_unsigned()) {
    return bad("data_offsets must be two non-negative integers");
  }
  uint64_t numel = 1;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) return bad("shape has a negative or non-integer dimension");
    uint64_t dim = d.get<uint64_t>();
    // Dimensions and element counts stay far below 2^62, so that int64 shapes, numel() and
    // numel * dtype size (at most 8) never overflow, even after a zero dimension.
    if (dim > (1ull << 62) || (dim != 0 && numel > (1ull << 62) / dim)) {
      return bad("shape overflows");
    }
    numel *= dim;
    view->shape.push_back(static_cast<int64_t>(dim));
  }
  if (numel > (1ull << 62) / static_cast<uint64_t>(DTypeSize(*dtype))) {
    return bad("shape overflows");
  }
  offsets[0] = offs[0].get<uint64_t>();
  offsets[1] = offs[1].get<uint64_t>();
  if (offsets[0] > offsets[1] || offsets[1] > data_size) {
    return bad(absl::StrCat("data_offsets [", offsets[0], ", ", offsets[1],
                            "] out of bounds of the ", data_size, "-byte data section"));
  }
  uint64_t expected = numel * static_cast<uint64_t>(DTypeSize(*dtype));
  if (offsets[1] - offsets[0] != expected) {
    return bad(absl::StrCat("holds ", offsets[1] - offsets[0], " bytes but shape [",
                            absl::StrJoin(view->shape, ","), "] of ", DTypeName(*dtype), " needs ",
                            expected));
  }
  view->name = name;
  view->dtype = *dtype;
  view->nbytes = expected;
  return absl::OkStatus();
}

// Checks that the tensors tile the data section exactly: no overlap, no hole.
Status CheckCoverage(const std::string& path, std::vector<std::pair<uint64_t, uint64_t>> spans,
                     const std::vector<std::string>& names, uint64_t data_size) {
  std::vector<size_t> order(spans.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return spans[a] < spans[b]; });
  uint64_t cursor = 0;
  for (size_t i : order) {
    if (spans[i].first < cursor) {
      return HeaderError(path, absl::StrCat("tensor '", names[i], "' overlaps another tensor"));
    }
    if (spans[i].first > cursor) {
      return HeaderError(path, absl::StrCat("gap of ", spans[i].first - cursor,
                                            " bytes before tensor '", names[i], "'"));
    }
    cursor = spans[i].second;
  }
  if (cursor != data_size) {
    return HeaderError(path, absl::StrCat("data section has ", data_size - cursor,
                                          " trailing bytes no tensor covers"));
  }
  return absl::OkStatus();
}

}  // namespace

int DTypeSize(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e.size;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e.name;
  }
  return "?";
}

StatusOr<DType> ParseDType(const std::string& name) {
  for (const auto& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", name, "'"));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("file not found: ", path));
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return HeaderError(path, "not a regular file");
  }
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_size_ = static_cast<size_t>(st.st_size);
  if (file->map_size_ < 8) {
    ::close(fd);
    return HeaderError(path, absl::StrCat("only ", file->map_size_, " bytes; no header"));
  }
  file->map_ = ::mmap(nullptr, file->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (file->map_ == MAP_FAILED) {
    file->map_ = nullptr;
    return absl::InternalError(absl::StrCat("cannot map ", path, ": ", strerror(errno)));
  }
  const auto* base = static_cast<const uint8_t*>(file->map_);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len > kMaxHeaderBytes || header_len > file->map_size_ - 8) {
    return HeaderError(path, absl::StrCat("header length ", header_len, " exceeds the file (",
                                          file->map_size_, " bytes)"));
  }
  json header = json::parse(base + 8, base + 8 + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return HeaderError(path, "header is not a JSON object");
  }
  const uint8_t* data = base + 8 + header_len;
  uint64_t data_size = file->map_size_ - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  std::vector<std::string> names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) return HeaderError(path, "__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) return HeaderError(path, "__metadata__ values must be strings");
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    TensorView view;
    uint64_t offsets[2];
    RETURN_IF_ERROR(ParseEntry(path, it.key(), it.value(), data_size, &view, offsets));
    view.data = data + offsets[0];
    spans.emplace_back(offsets[0], offsets[1]);
    names.push_back(it.key());
    file->index_[view.name] = file->tensors_.size();
    file->tensors_.push_back(std::move(view));
  }
  RETURN_IF_ERROR(CheckCoverage(path, spans, names, data_size));
  return std::shared_ptr<const SafetensorsFile>(std::move(file));
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Shard file names listed by an index.json, in first-seen order.
StatusOr<std::vector<std::string>> ShardsFromIndex(const std::string& index_path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(index_path));
  json index = json::parse(text, nullptr, false);
  if (index.is_discarded() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": not a safetensors index (needs a weight_map object)"));
  }
  std::vector<std::string> shards;
  for (auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map entry '", name, "' is not a file name"));
    }
    std::string shard = file.get<std::string>();
    if (shard.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": shard name '", shard, "' must not contain '/'"));
    }
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  }
  return shards;
}

StatusOr<std::vector<std::string>> SafetensorsInDir(const std::string& dir) {
  std::vector<std::string> found;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return absl::NotFoundError(absl::StrCat("cannot open directory ", dir));
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0) {
      found.push_back(name);
    }
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

StatusOr<std::shared_ptr<const Checkpoint>> Checkpoint::Open(const std::string& path) {
  auto ckpt = std::make_shared<Checkpoint>();
  ckpt->path_ = path;
  std::vector<std::string> files;
  if (!IsDirectory(path)) {
    files.push_back(path);
  } else if (PathExists(JoinPath(path, "model.safetensors.index.json"))) {
    ASSIGN_OR_RETURN(auto shards, ShardsFromIndex(JoinPath(path, "model.safetensors.index.json")));
    for (const auto& s : shards) files.push_back(JoinPath(path, s));
  } else if (PathExists(JoinPath(path, "model.safetensors"))) {
    files.push_back(JoinPath(path, "model.safetensors"));
  } else {
    ASSIGN_OR_RETURN(auto found, SafetensorsInDir(path));
    if (found.size() != 1) {
      return absl::NotFoundError(absl::StrCat(
          "no model.safetensors or model.safetensors.index.json in ", path,
          found.empty() ? "" : " (several .safetensors files and no index)"));
    }
    files.push_back(JoinPath(path, found[0]));
  }
  for (const auto& f : files) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(f));
    for (const auto& t : file->tensors()) {
      if (!ckpt->by_name_.emplace(t.name, &t).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", t.name, "' appears in two shards of ", path));
      }
    }
    ckpt->files_.push_back(std::move(file));
  }
  return std::shared_ptr<const Checkpoint>(std::move(ckpt));
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, view] : by_name_) names.push_back(name);
  return names;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::vector<Spec> specs,
    const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Spec& s : specs) {
    uint64_t numel = 1;
    for (int64_t d : s.shape) numel *= static_cast<uint64_t>(d);
    uint64_t bytes = numel * DTypeSize(s.dtype);
    header[s.name] = {{"dtype", DTypeName(s.dtype)},
                      {"shape", s.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->path_ = path;
  w->tmp_path_ = absl::StrCat(path, ".tmp.", getpid());
  w->specs_ = std::move(specs);
  FILE* f = std::fopen(w->tmp_path_.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", w->tmp_path_, ": ", strerror(errno)));
  }
  w->file_ = f;
  uint8_t len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(text.data(), 1, n, f) != n) {
    return absl::InternalError(absl::StrCat("short write to ", w->tmp_path_));
  }
  return w;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_ != nullptr) {
    std::fclose(static_cast<FILE*>(file_));
    std::remove(tmp_path_.c_str());
  }
}

Status SafetensorsWriter::Write(const std::string& name, const void* data, size_t nbytes) {
  if (next_ >= specs_.size() || specs_[next_].name != name) {
    return absl::FailedPreconditionError(
        absl::StrCat("safetensors writer for ", path_, ": tensor '", name,
                     "' written out of declaration order"));
  }
  const Spec& s = specs_[next_];
  size_t expected = DTypeSize(s.dtype);
  for (int64_t d : s.shape) expected *= static_cast<size_t>(d);
  if (nbytes != expected) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", nbytes,
                                                   " bytes given, ", expected, " declared"));
  }
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, static_cast<FILE*>(file_)) != nbytes) {
    return absl::InternalError(absl::StrCat("short write to ", tmp_path_));
  }
  ++next_;
  return absl::OkStatus();
}

Status SafetensorsWriter::Finish() {
  if (next_ != specs_.size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "safetensors writer for ", path_, ": ", specs_.size() - next_, " tensors not written"));
  }
  FILE* f = static_cast<FILE*>(file_);
  file_ = nullptr;
  if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0 || std::fclose(f) != 0) {
    std::remove(tmp_path_.c_str());
    return absl::InternalError(absl::StrCat("cannot flush ", tmp_path_));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename to ", path_, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

Status WriteSafetensors(const std::string& path, const std::map<std::string, OwnedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsWriter::Spec> specs;
  for (const auto& [name, t] : tensors) specs.push_back({name, t.dtype, t.shape});
  ASSIGN_OR_RETURN(auto writer, SafetensorsWriter::Create(path, specs, metadata));
  for (const auto& [name, t] : tensors) {
    RETURN_IF_ERROR(writer->Write(name, t.bytes.data(), t.bytes.size()));
  }
  return writer->Finish();
}

}  // namespace vlmd
