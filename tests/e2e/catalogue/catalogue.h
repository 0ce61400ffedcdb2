// The bad-input catalogue: a table of invalid requests, each with the status code and message
// parts it must get. Entries are plain data (method name + serialized request), so any RPC of
// any service can be covered by adding rows; the test (bad_input_catalogue_test.cc) sends them
// through a generic stub. Add rows in the Add*Cases function of the matching file, or a new
// file with its own Add*Cases (jobs, eval).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "vlmd/v1/inference.pb.h"

namespace vlmd::e2e::catalogue {

inline constexpr char kInfer[] = "/vlmd.v1.Inference/Infer";
inline constexpr char kInferStream[] = "/vlmd.v1.Inference/InferStream";
inline constexpr char kListModels[] = "/vlmd.v1.Inference/ListModels";
inline constexpr char kListAdapters[] = "/vlmd.v1.Inference/ListAdapters";
inline constexpr char kLoadAdapter[] = "/vlmd.v1.Inference/LoadAdapter";
inline constexpr char kUnloadAdapter[] = "/vlmd.v1.Inference/UnloadAdapter";

// Tokens the catalogue server accepts (and one it does not).
inline constexpr char kAdminToken[] = "catalogue-admin-5f0e9d8c7b6a";
inline constexpr char kInferToken[] = "catalogue-infer-1a2b3c4d5e6f";

// One invalid request.
struct BadCase {
  std::string name;     // unique; says what is wrong
  std::string method;   // full gRPC method name
  std::string request;  // serialized request message (or deliberately broken bytes)
  grpc::StatusCode code;
  std::vector<std::string> message;  // parts the error message must contain
  std::string token = kAdminToken;   // bearer token sent; "" = none
  std::string raw_authorization;     // when set, sent as the authorization value instead
};

// What the cases may refer to: the server's allowed root with its prepared files, and a
// directory outside it. Filled by the test before the cases are built.
struct Env {
  std::string root;           // allowed root
  std::string outside;        // not under any root
  std::string model;          // the default (tiny) model's name
  std::string adapter_model;  // the model the fixture adapter fits
};

// The result of sending one request.
struct CallResult {
  grpc::Status status;
  int responses = 0;
};

// Sends `c` with a deadline of `timeout_s` through a generic stub (unary and server-streaming
// methods alike: one message, half-close, read to the end).
CallResult Send(grpc::Channel* channel, const BadCase& c, double timeout_s = 60);

// Builders.
BadCase Case(std::string name, std::string method, const google::protobuf::Message& request,
             grpc::StatusCode code, std::vector<std::string> message);
// A user turn with `text`, greedy, 4 new tokens, for the default model.
v1::InferRequest Text(const std::string& text = "What is this?");
// The same with one image part (set by `set`) before the text.
v1::InferRequest WithImage(const std::function<void(v1::Image*)>& set);

// The tables, by concern. Each appends to `out`.
void AddImageCases(const Env& env, std::vector<BadCase>* out);
void AddRequestCases(const Env& env, std::vector<BadCase>* out);
void AddAdapterCases(const Env& env, std::vector<BadCase>* out);
void AddWireAndAuthCases(const Env& env, std::vector<BadCase>* out);

// Prepares what the cases need under env.root / env.outside (images, symlinks, adapters).
void PrepareFiles(const Env& env);

}  // namespace vlmd::e2e::catalogue
