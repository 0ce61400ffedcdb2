// vlmctl chat: an interactive multi-turn session with a served model or adapter, as SWIFT's
// `swift infer` prompt: type a message and read the answer as it streams. Images: an inline
// <img>PATH</img>, or an <image> tag, after which vlmctl asks for the path ("Input an image
// path or URL <<< "). Commands: /clear (forget the history), /adapter [NAME] (switch adapter;
// no name = the base model), /model NAME, /help, /exit. Reads stdin line by line, so it works
// from a terminal (prompts shown) and from a script or pipe (no prompts; answers only on
// stdout, one per line; notices on stderr).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/output.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmctl {
namespace {

namespace v1 = vlmd::v1;

constexpr char kPrompt[] = "<<< ";
constexpr char kImagePrompt[] = "Input an image path or URL <<< ";
constexpr char kImageTag[] = "<image>";
constexpr char kImgOpen[] = "<img>";
constexpr char kImgClose[] = "</img>";
constexpr char kHelp[] =
    "Type a message and press Enter. Images: <img>PATH</img> inline, or <image> and then the\n"
    "path when asked. Commands: /clear, /adapter [NAME], /model NAME, /help, /exit.\n";

struct ChatFlags {
  std::string model, adapter, system;
  int max_new_tokens = 0;
  double temperature = 0;
  bool json = false;
  std::map<std::string, CLI::Option*> opts;
  bool Given(const std::string& name) const { return opts.at(name)->count() > 0; }
};

class ChatSession {
 public:
  ChatSession(const ChatFlags& flags, const ClientOptions& options, v1::Inference::Stub* stub)
      : flags_(flags), options_(options), stub_(stub), tty_(isatty(STDIN_FILENO)) {
    model_ = flags.model;
    adapter_ = flags.adapter;
    Clear();
  }

  // Runs until /exit or the end of stdin. Returns 0, or the exit code of the first failed
  // turn (the session goes on after a failure).
  int Run() {
    if (tty_) std::printf("%s", kHelp);
    std::string line;
    while (ReadLine(kPrompt, &line)) {
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!Command(line)) break;
        continue;
      }
      int code = Turn(line);
      if (code != kExitOk && exit_code_ == kExitOk) exit_code_ = code;
    }
    return exit_code_;
  }

 private:
  bool ReadLine(const char* prompt, std::string* line) {
    if (tty_) {
      std::printf("%s", prompt);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, *line)) return false;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }

  void Clear() {
    history_.clear();
    if (flags_.system.empty()) return;
    v1::ChatMessage* system = &history_.emplace_back();
    system->set_role("system");
    system->add_content()->set_text(flags_.system);
  }

  // Handles a /command; false for /exit.
  bool Command(const std::string& line) {
    std::istringstream words(line);
    std::string name, arg;
    words >> name;
    std::getline(words >> std::ws, arg);
    if (name == "/exit" || name == "/quit") return false;
    if (name == "/clear") {
      Clear();
      std::fprintf(stderr, "history cleared\n");
    } else if (name == "/adapter") {
      adapter_ = arg;
      std::fprintf(stderr, "adapter: %s\n", arg.empty() ? "(none, base model)" : arg.c_str());
    } else if (name == "/model" && !arg.empty()) {
      model_ = arg;
      std::fprintf(stderr, "model: %s\n", arg.c_str());
    } else {
      std::fprintf(stderr, "%s", kHelp);
    }
    return true;
  }

  // Adds the image at `path` (a local file) to `message`; false after printing why not.
  bool AddImage(const std::string& path, v1::ChatMessage* message) {
    if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
      ReportLocalError("only local image files can be attached, not URLs: " + path);
      return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      ReportLocalError("cannot read image file '" + path + "'");
      return false;
    }
    std::ostringstream data;
    data << in.rdbuf();
    message->add_content()->mutable_image()->set_data(data.str());
    return true;
  }

  void AddText(const std::string& text, v1::ChatMessage* message) {
    if (!text.empty()) message->add_content()->set_text(text);
  }

  // The user's message: text with images where <img>PATH</img> or <image> stood.
  bool BuildMessage(const std::string& line, v1::ChatMessage* message) {
    message->set_role("user");
    size_t pos = 0;
    while (pos < line.size()) {
      size_t tag = line.find(kImageTag, pos), img = line.find(kImgOpen, pos);
      size_t next = std::min(tag, img);
      AddText(line.substr(pos, next == std::string::npos ? std::string::npos : next - pos),
              message);
      if (next == std::string::npos) break;
      std::string path;
      if (next == tag) {
        pos = tag + sizeof(kImageTag) - 1;
        if (!ReadLine(kImagePrompt, &path)) return false;
      } else {
        size_t close = line.find(kImgClose, img);
        if (close == std::string::npos) {
          ReportLocalError("<img> without </img>");
          return false;
        }
        path = line.substr(img + sizeof(kImgOpen) - 1, close - img - (sizeof(kImgOpen) - 1));
        pos = close + sizeof(kImgClose) - 1;
      }
      if (!AddImage(path, message)) return false;
    }
    return message->content_size() > 0;
  }

  v1::InferRequest Request(const v1::ChatMessage& user) const {
    v1::InferRequest request;
    request.set_model(model_);
    request.set_adapter(adapter_);
    for (const v1::ChatMessage& m : history_) *request.add_messages() = m;
    *request.add_messages() = user;
    v1::GenerationParams* p = request.mutable_params();
    if (flags_.Given("--max-new-tokens")) p->set_max_new_tokens(flags_.max_new_tokens);
    if (flags_.Given("--temperature")) p->set_temperature(flags_.temperature);
    return request;
  }

  // One user turn: streams the answer and, when it succeeded, keeps both turns.
  int Turn(const std::string& line) {
    v1::ChatMessage user;
    if (!BuildMessage(line, &user)) return kExitUsage;
    grpc::ClientContext context;
    PrepareContext(options_, &context);
    auto reader = stub_->InferStream(&context, Request(user));
    v1::InferStreamResponse message;
    v1::InferResponse answer;
    while (reader->Read(&message)) Collect(message, &answer);
    grpc::Status status = reader->Finish();
    if (!flags_.json) std::printf("\n");
    std::fflush(stdout);
    if (!status.ok()) return ReportError(status);
    if (flags_.json) std::printf("%s\n", ToJson(answer).c_str());
    std::fflush(stdout);
    history_.push_back(std::move(user));
    v1::ChatMessage* assistant = &history_.emplace_back();
    assistant->set_role("assistant");
    assistant->add_content()->set_text(answer.text());
    return kExitOk;
  }

  // Prints streamed text as it comes (unless --json) and accumulates the whole answer.
  void Collect(const v1::InferStreamResponse& message, v1::InferResponse* answer) {
    if (message.has_delta()) {
      const v1::InferDelta& d = message.delta();
      answer->mutable_text()->append(d.text());
      answer->mutable_token_ids()->Add(d.token_ids().begin(), d.token_ids().end());
      if (!flags_.json) std::fputs(d.text().c_str(), stdout);
      std::fflush(stdout);
    } else if (message.has_done()) {
      const v1::InferDone& done = message.done();
      answer->set_request_id(done.request_id());
      answer->set_model(done.model());
      answer->set_adapter(done.adapter());
      answer->set_finish_reason(done.finish_reason());
      *answer->mutable_usage() = done.usage();
      *answer->mutable_timings() = done.timings();
    }
  }

  const ChatFlags& flags_;
  const ClientOptions& options_;
  v1::Inference::Stub* stub_;
  const bool tty_;
  std::string model_, adapter_;
  std::vector<v1::ChatMessage> history_;
  int exit_code_ = kExitOk;
};

void AddFlags(CLI::App* cmd, ChatFlags* f) {
  cmd->add_option("--model", f->model, "Served model (default: the server's first)");
  cmd->add_option("--adapter", f->adapter, "Loaded adapter (switch with /adapter NAME)");
  cmd->add_option("--system", f->system, "System prompt");
  f->opts["--max-new-tokens"] =
      cmd->add_option("--max-new-tokens", f->max_new_tokens, "Tokens per answer at most");
  f->opts["--temperature"] = cmd->add_option("--temperature", f->temperature, "0 = greedy");
  cmd->add_flag("--json", f->json, "Print each answer as one JSON object (InferResponse)");
}

}  // namespace

void AddChatCommand(CLI::App& app, const ClientOptions& options, RunFn* run) {
  auto* cmd = app.add_subcommand("chat", "Interactive chat (stdin: a terminal or a script)");
  auto flags = std::make_shared<ChatFlags>();
  AddFlags(cmd, flags.get());
  cmd->callback([flags, &options, run] {
    *run = [flags, &options] {
      std::shared_ptr<grpc::Channel> channel = Connect(options);
      if (channel == nullptr) return static_cast<int>(kExitUsage);
      auto stub = v1::Inference::NewStub(channel);
      return ChatSession(*flags, options, stub.get()).Run();
    };
  });
}

}  // namespace vlmctl
