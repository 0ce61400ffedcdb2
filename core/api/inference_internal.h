// Core-internal access to the objects an InferenceService serves: the evaluation service runs
// its teacher-forced pass on the very model and adapter that generation uses, without loading
// them a second time. Torch-free itself (the types are only declared); server/ has no use for
// it.
#pragma once

#include <memory>
#include <string>

#include "core/api/inference.h"

namespace vlmd {
struct ModelBundle;  // core/engine/model_bundle.h
struct LoraAdapter;  // core/model/lora.h
}  // namespace vlmd

namespace vlmd::api {

// The bundle of served model `name` ("" = the first); null when there is no such model or
// `service` is not the built-in implementation (a test fake). Thread-safe.
std::shared_ptr<const ModelBundle> ServedBundle(const InferenceService& service,
                                                const std::string& name);
// The loaded adapter `name`; null when unknown or `service` is not the built-in one.
std::shared_ptr<const LoraAdapter> ServedAdapter(const InferenceService& service,
                                                 const std::string& name);

}  // namespace vlmd::api
