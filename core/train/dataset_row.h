// Internal to core/train: one data-set row (already parsed into a JSON object) to a Sample.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/train/dataset.h"
#include "nlohmann/json.hpp"

namespace vlmd::train_internal {

// Where a row comes from and how its images are resolved.
struct RowContext {
  std::string file;
  int64_t line = 0;
  std::string base_dir;  // relative image paths are taken from here
  bool latex_ocr = false;
  const std::optional<std::vector<std::string>>* allowed_roots = nullptr;
  bool from_csv = false;  // cells are strings; "images"/"history" cells may hold JSON lists
};

// Why a row could not be used.
struct RowError {
  IssueKind kind = IssueKind::kBadRow;
  std::string reason;
};

// Converts a row in any supported layout. Returns the problem, or nullopt with *sample filled.
std::optional<RowError> RowToSample(const nlohmann::json& row, const RowContext& context,
                                    Sample* sample);

// Splits user-turn text on "<image>" into image parts and adds the tags SWIFT would add: when
// there are fewer tags than `num_images`, the missing ones go in front of the first user turn.
// Errors: more tags than images, a tag in a system or assistant turn.
std::optional<RowError> PlaceImageTags(size_t num_images, std::vector<ChatMessage>* messages);

// Checks the turn order: optional system first, then user/assistant alternating, ending with
// an assistant turn.
std::optional<RowError> CheckTurnOrder(const std::vector<ChatMessage>& messages);

}  // namespace vlmd::train_internal
