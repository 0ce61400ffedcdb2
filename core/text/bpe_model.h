// The BPE model of a byte-level tokenizer.json: vocabulary, merges by rank, and a word cache.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/base/status.h"
#include "nlohmann/json_fwd.hpp"

namespace vlmd::text {

// Thread-safe cache from a word's bytes to its ids, split in shards to keep lock contention low.
// Stops growing when full, as HF's cache does.
class WordCache {
 public:
  // Appends the cached ids of `word` to `ids` and returns true, or returns false.
  bool Lookup(std::string_view word, std::vector<int32_t>* ids) const;
  // Remembers the ids of `word` (ids[begin..]).
  void Insert(std::string_view word, const std::vector<int32_t>& ids, size_t begin) const;

  static constexpr size_t kMaxWordBytes = 256;  // longer words are not cached

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kEntriesPerShard = 8192;
  struct Shard {
    std::mutex mutex;
    absl::flat_hash_map<std::string, std::vector<int32_t>> entries;
  };
  mutable std::array<Shard, kShards> shards_;
};

// Byte-level BPE: a word's bytes start as one symbol per byte (its byte-level character's id),
// then the pair with the lowest merge rank (leftmost on ties) is merged until none applies.
// Immutable after construction; thread-safe.
class BpeModel {
 public:
  // Builds the model from tokenizer.json's "model" object. Errors name `file` and the field.
  static StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& model,
                                                      const std::string& file);

  // Appends the ids of one pre-tokenized word given as raw bytes (before byte-level mapping).
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;
  // Vocabulary lookup by token string (byte-level form).
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Token string of a vocabulary id, or null.
  const std::string* IdToToken(int32_t id) const;
  // One more than the largest vocabulary id.
  int32_t Size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  Status LoadVocab(const nlohmann::json& vocab, const std::string& file);
  Status LoadMerges(const nlohmann::json& merges, const std::string& file);
  // Initial symbols of a word: one id per byte; bytes with no id become the unknown token.
  std::vector<int32_t> InitialSymbols(std::string_view word) const;
  // Applies merges to `symbols` in place.
  void ApplyMerges(std::vector<int32_t>* symbols) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of each byte's character, -1 if absent
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  WordCache cache_;
};

}  // namespace vlmd::text
