// Wire messages (vlmd.v1) <-> the facade's plain structs. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <optional>

#include "core/api/inference.h"
#include "core/base/status.h"
#include "vlmd/v1/inference.pb.h"

namespace vlmd::server {

// What a response repeats of its request: the id and the model and adapter that answered.
struct RequestNames {
  std::string id;
  std::string model;
  std::string adapter;
};

// Builds the engine request: messages with their text and image parts (images in order of
// appearance), pixel bounds and generation parameters (unset stays unset). INVALID_ARGUMENT
// names a content part or image that is empty. Range checks are the engine's.
StatusOr<api::InferRequest> FromProto(const v1::InferRequest& request);

// Generation parameters; unset fields stay unset (the model's generation_config applies).
SamplingRequest SamplingFromProto(const v1::GenerationParams& params);

// A gRPC deadline (system clock; time_point::max() when none) as a steady-clock deadline.
std::optional<std::chrono::steady_clock::time_point> SteadyDeadline(
    std::chrono::system_clock::time_point deadline);

v1::FinishReason ToProto(FinishReason reason);
void ToProto(const TokenLogprob& in, v1::TokenLogprob* out);
void ToProto(const Usage& in, v1::Usage* out);
void ToProto(const Timings& in, v1::Timings* out);
void ToProto(const api::ModelInfo& in, v1::ModelInfo* out);
void ToProto(const api::AdapterInfo& in, v1::AdapterInfo* out);

// Fills the unary response from a finished generation.
void ToProto(const RequestNames& names, const GenerationResult& result, v1::InferResponse* out);
// Appends one chunk of streamed output to a delta (several chunks may merge into one).
void AppendToProto(const api::InferChunk& chunk, v1::InferDelta* out);
// The last message of a stream.
void ToProto(const RequestNames& names, const GenerationResult& result, v1::InferDone* out);

}  // namespace vlmd::server
