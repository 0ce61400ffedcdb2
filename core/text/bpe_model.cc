#include "core/text/bpe_model.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "core/text/byte_level.h"
#include "core/text/utf8.h"
#include "nlohmann/json.hpp"

namespace vlmd::text {
namespace {

using nlohmann::json;

Status FieldError(const std::string& file, absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("tokenizer file ", file, ": model.", field, ": ", problem));
}

Status FieldUnimplemented(const std::string& file, absl::string_view field,
                          absl::string_view problem) {
  return absl::UnimplementedError(
      absl::StrCat("tokenizer file ", file, ": model.", field, ": ", problem));
}

// Splits one merge entry ("a b" or ["a", "b"]) into its two tokens.
StatusOr<std::pair<std::string, std::string>> MergePair(const json& entry, size_t index,
                                                        const std::string& file) {
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    return std::make_pair(entry[0].get<std::string>(), entry[1].get<std::string>());
  }
  if (entry.is_string()) {
    const std::string& line = entry.get_ref<const std::string&>();
    size_t space = line.find(' ');
    if (space != std::string::npos && line.find(' ', space + 1) == std::string::npos) {
      return std::make_pair(line.substr(0, space), line.substr(space + 1));
    }
  }
  return FieldError(file, absl::StrCat("merges[", index, "]"),
                    "expected \"a b\" or [\"a\", \"b\"]");
}

// A candidate merge of the symbols at `pos` and its right neighbour.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t left_id;
  int32_t right_id;
  int32_t merged_id;
  // Orders a max-heap so that the top is the lowest rank, then the leftmost position.
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

bool WordCache::Lookup(std::string_view word, std::vector<int32_t>* ids) const {
  Shard& shard = shards_[std::hash<std::string_view>()(word) % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.entries.find(AsAbsl(word));
  if (it == shard.entries.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::Insert(std::string_view word, const std::vector<int32_t>& ids, size_t begin) const {
  Shard& shard = shards_[std::hash<std::string_view>()(word) % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.entries.size() >= kEntriesPerShard) return;
  shard.entries.try_emplace(std::string(word), ids.begin() + begin, ids.end());
}

StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const json& model, const std::string& file) {
  if (!model.is_object()) return FieldError(file, "", "expected an object");
  auto type = model.find("type");
  if (type != model.end() && *type != "BPE") {
    return FieldUnimplemented(file, "type", absl::StrCat(type->dump(), " (only BPE)"));
  }
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return FieldUnimplemented(file, "dropout", "BPE dropout is not supported");
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(field);
    if (it != model.end() && !it->is_null() && *it != "") {
      return FieldUnimplemented(file, field, "must be null or empty");
    }
  }
  if (model.value("byte_fallback", false)) {
    return FieldUnimplemented(file, "byte_fallback", "byte fallback is not supported");
  }
  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());
  bpe->fuse_unk_ = model.value("fuse_unk", false);
  bpe->ignore_merges_ = model.value("ignore_merges", false);
  if (!model.contains("vocab") || !model.contains("merges")) {
    return FieldError(file, "vocab", "\"vocab\" and \"merges\" are required");
  }
  RETURN_IF_ERROR(bpe->LoadVocab(model["vocab"], file));
  RETURN_IF_ERROR(bpe->LoadMerges(model["merges"], file));
  auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) {
    auto id = unk->is_string() ? bpe->TokenToId(unk->get<std::string>()) : std::nullopt;
    if (!id) return FieldError(file, "unk_token", "not a string in the vocabulary");
    bpe->unk_id_ = id;
  }
  return bpe;
}

Status BpeModel::LoadVocab(const json& vocab, const std::string& file) {
  if (!vocab.is_object()) return FieldError(file, "vocab", "expected an object");
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= INT32_MAX) {
      return FieldError(file, "vocab", absl::StrCat("bad id for token ", json(token).dump()));
    }
    int32_t value = id.get<int32_t>();
    vocab_[token] = value;
    if (static_cast<size_t>(value) >= id_to_token_.size()) id_to_token_.resize(value + 1);
    id_to_token_[value] = token;
  }
  const ByteLevelMap& bytes = ByteLevelMap::Get();
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = TokenToId(bytes.CharFor(static_cast<uint8_t>(b))).value_or(-1);
  }
  return absl::OkStatus();
}

Status BpeModel::LoadMerges(const json& merges, const std::string& file) {
  if (!merges.is_array()) return FieldError(file, "merges", "expected an array");
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    if (merges[i].is_string() &&
        merges[i].get_ref<const std::string&>().rfind("#version", 0) == 0) {
      continue;  // merges.txt header line
    }
    ASSIGN_OR_RETURN(auto pair, MergePair(merges[i], i, file));
    auto left = TokenToId(pair.first);
    auto right = TokenToId(pair.second);
    auto merged = TokenToId(pair.first + pair.second);
    if (!left || !right || !merged) {
      return FieldError(file, absl::StrCat("merges[", i, "]"),
                        absl::StrCat("token not in the vocabulary: ",
                                     json(pair.first + " " + pair.second).dump()));
    }
    merges_[PairKey(*left, *right)] = Merge{rank++, *merged};  // a later duplicate wins, as in HF
  }
  return absl::OkStatus();
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AsAbsl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= Size()) return nullptr;
  const std::string& token = id_to_token_[id];
  auto it = vocab_.find(AsAbsl(token));  // ids missing from a sparse vocabulary have no entry
  return it != vocab_.end() && it->second == id ? &token : nullptr;
}

std::vector<int32_t> BpeModel::InitialSymbols(std::string_view word) const {
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  bool last_was_unk = false;
  for (char c : word) {
    int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id >= 0) {
      symbols.push_back(id);
      last_was_unk = false;
    } else if (unk_id_ && !(fuse_unk_ && last_was_unk)) {
      symbols.push_back(*unk_id_);
      last_was_unk = true;
    }
  }
  return symbols;
}

void BpeModel::ApplyMerges(std::vector<int32_t>* symbols) const {
  const int32_t n = static_cast<int32_t>(symbols->size());
  std::vector<int32_t>& id = *symbols;  // -1 once merged into the left neighbour
  std::vector<int32_t> prev(n), next(n);
  std::vector<Candidate> heap;
  // Adds the pair starting at `pos` as a candidate (kept a heap only when `keep_heap`).
  auto consider = [&](int32_t pos, bool keep_heap) {
    if (pos < 0 || next[pos] >= n) return;
    auto it = merges_.find(PairKey(id[pos], id[next[pos]]));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, id[pos], id[next[pos]], it->second.merged_id});
    if (keep_heap) std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1;
  }
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, false);
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    int32_t right = next[top.pos];
    // Skip candidates made stale by an earlier merge of either symbol.
    if (id[top.pos] != top.left_id || right >= n || id[right] != top.right_id) continue;
    id[top.pos] = top.merged_id;
    id[right] = -1;
    next[top.pos] = next[right];
    if (next[right] < n) prev[next[right]] = top.pos;
    consider(prev[top.pos], true);
    consider(top.pos, true);
  }
  symbols->erase(std::remove(symbols->begin(), symbols->end(), -1), symbols->end());
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = TokenToId(ByteLevelMap::Get().Encode(word))) {
      ids->push_back(*id);
      return;
    }
  }
  bool cacheable = word.size() <= WordCache::kMaxWordBytes;
  if (cacheable && cache_.Lookup(word, ids)) return;
  std::vector<int32_t> symbols = InitialSymbols(word);
  if (symbols.size() > 1) ApplyMerges(&symbols);
  size_t begin = ids->size();
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  if (cacheable) cache_.Insert(word, *ids, begin);
}

}  // namespace vlmd::text
