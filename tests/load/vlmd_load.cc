// vlmd_load: drives N concurrent streaming clients (InferStream) against a vlmd server on
// loopback for T seconds with a mix of text and image requests, requests through a LoRA
// adapter, cancellations and short deadlines; samples the server's RSS from /proc and
// reports throughput, latency percentiles (TTFT, total), outcomes by code and RSS over time.
// Links gRPC and protobuf only (like vlmctl).
//
//   vlmd_load --addr 127.0.0.1:50051 --streams 256 --duration 600 --pid $(pidof vlmd)
//             [--token T] [--model M] [--adapter-model M --adapter A] [--image FILE]...
//             [--cancel 0.1] [--deadline 0.1] [--deadline-ms 300] [--max-new-tokens 24]
//             [--warmup 60] [--request-timeout 600] [--json OUT] [--max-rss-growth-mib 32]
//             [--max-stall 30] [--seed 1]
// Exit status: 0 when every outcome was expected, nothing stalled and RSS stayed within the
// bound; 1 otherwise; 2 for a bad command line.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "tests/load/load_stats.h"
#include "vlmd/v1/inference.grpc.pb.h"

namespace vlmd::load {
namespace {

namespace v1 = vlmd::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string addr = "127.0.0.1:50051", token, model, adapter_model, adapter, json;
  std::vector<std::string> images;  // encoded image files sent inline
  int streams = 16, max_new_tokens = 24, deadline_ms = 300;
  double request_timeout_s = 600;  // deadline of requests that are meant to complete
  double duration_s = 20, warmup_s = -1, cancel = 0.1, deadline = 0.1, adapter_share = 0.25;
  double image_share = 0.3, max_rss_growth_mib = 32, max_stall_s = 30;
  pid_t pid = 0;
  uint64_t seed = 1;
};

bool Parse(int argc, char** argv, Options* o) {
  using Set = std::function<void(const std::string&)>;
  auto text = [](std::string* f) -> Set { return [f](const std::string& v) { *f = v; }; };
  auto num = [](auto* f) -> Set {
    return
        [f](const std::string& v) { *f = static_cast<std::decay_t<decltype(*f)>>(std::stod(v)); };
  };
  const std::map<std::string, Set> flags = {
      {"--addr", text(&o->addr)},
      {"--token", text(&o->token)},
      {"--model", text(&o->model)},
      {"--adapter-model", text(&o->adapter_model)},
      {"--adapter", text(&o->adapter)},
      {"--json", text(&o->json)},
      {"--image", [o](const std::string& v) { o->images.push_back(v); }},
      {"--streams", num(&o->streams)},
      {"--duration", num(&o->duration_s)},
      {"--warmup", num(&o->warmup_s)},
      {"--cancel", num(&o->cancel)},
      {"--deadline", num(&o->deadline)},
      {"--deadline-ms", num(&o->deadline_ms)},
      {"--request-timeout", num(&o->request_timeout_s)},
      {"--max-new-tokens", num(&o->max_new_tokens)},
      {"--max-rss-growth-mib", num(&o->max_rss_growth_mib)},
      {"--max-stall", num(&o->max_stall_s)},
      {"--pid", num(&o->pid)},
      {"--seed", [o](const std::string& v) { o->seed = std::strtoull(v.c_str(), nullptr, 10); }},
  };
  try {
    for (int i = 1; i < argc; ++i) {
      auto it = flags.find(argv[i]);
      if (it == flags.end() || i + 1 >= argc) return false;
      it->second(argv[++i]);
    }
  } catch (const std::exception&) {
    return false;  // a number flag with a non-number
  }
  if (o->warmup_s < 0) o->warmup_s = o->duration_s / 10;
  return o->streams > 0 && o->duration_s > 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One client: requests back to back until `stop`.
class Client {
 public:
  Client(const Options& o, std::shared_ptr<grpc::Channel> channel,
         const std::vector<std::string>& images, Stats* stats, int index)
      : o_(o),
        stub_(v1::Inference::NewStub(channel)),
        images_(images),
        stats_(stats),
        rng_(o.seed * 1000003 + index) {}

  void Run(const std::atomic<bool>& stop) {
    while (!stop.load()) stats_->Add(One());
  }

 private:
  Outcome One() {
    std::uniform_real_distribution<double> u(0, 1);
    Outcome out;
    double a = u(rng_);
    out.action = a < o_.cancel                 ? Action::kCancel
                 : a < o_.cancel + o_.deadline ? Action::kDeadline
                                               : Action::kComplete;
    out.adapter = !o_.adapter.empty() && u(rng_) < o_.adapter_share;
    out.image = !images_.empty() && u(rng_) < o_.image_share;
    v1::InferRequest r;
    r.set_model(out.adapter ? o_.adapter_model : o_.model);
    if (out.adapter) r.set_adapter(o_.adapter);
    v1::ChatMessage* m = r.add_messages();
    m->set_role("user");
    if (out.image) {
      m->add_content()->mutable_image()->set_data(images_[rng_() % images_.size()]);
    }
    m->add_content()->set_text("Request " + std::to_string(rng_() % 100000) + ": describe it.");
    r.mutable_params()->set_max_new_tokens(o_.max_new_tokens);
    r.mutable_params()->set_temperature(0.7);
    r.mutable_params()->set_seed(rng_());
    r.mutable_params()->set_ignore_eos(true);  // steady, comparable lengths
    grpc::ClientContext ctx;
    double deadline_ms =
        out.action == Action::kDeadline ? o_.deadline_ms : o_.request_timeout_s * 1000;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(deadline_ms * 1000)));
    if (!o_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + o_.token);
    // Cancel after 1..4 deltas: some while prefilling is done, some mid-generation.
    const int cancel_after = 1 + static_cast<int>(rng_() % 4);
    auto start = Clock::now();
    auto reader = stub_->InferStream(&ctx, r);
    v1::InferStreamResponse msg;
    int deltas = 0;
    while (reader->Read(&msg)) {
      if (!msg.has_delta()) continue;
      out.tokens += msg.delta().token_ids_size();
      if (out.ttft_ms < 0 && msg.delta().token_ids_size() > 0) out.ttft_ms = MsSince(start);
      if (out.action == Action::kCancel && ++deltas == cancel_after) ctx.TryCancel();
    }
    grpc::Status s = reader->Finish();
    out.code = s.error_code();
    out.message = s.error_message();
    out.total_ms = MsSince(start);
    return out;
  }

  const Options& o_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  const std::vector<std::string>& images_;
  Stats* stats_;
  std::mt19937_64 rng_;
};

int Main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, &o)) {
    std::cerr << "usage: see the comment at the top of tests/load/vlmd_load.cc\n";
    return 2;
  }
  std::vector<std::string> images;
  for (const std::string& f : o.images) images.push_back(ReadAll(f));
  // A few channels shared by the clients (one TCP connection per channel).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::min(o.streams, 8); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct channels, not one shared subchannel
    channels.push_back(grpc::CreateCustomChannel(o.addr, grpc::InsecureChannelCredentials(), args));
  }
  Stats stats;
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.streams; ++i) {
    clients.push_back(
        std::make_unique<Client>(o, channels[i % channels.size()], images, &stats, i));
    threads.emplace_back([&, i] { clients[i]->Run(stop); });
  }
  std::vector<RssSample> rss;
  auto start = Clock::now();
  double next_print = 0;
  for (;;) {
    double t = MsSince(start) / 1000;
    if (o.pid > 0) rss.push_back({t, ReadRssKiB(o.pid), stats.completed()});
    if (t >= next_print) {
      std::cerr << "t=" << static_cast<int>(t) << "s done=" << stats.completed()
                << (o.pid > 0 ? " rss_kib=" + std::to_string(rss.back().rss_kib) : "") << "\n";
      next_print += std::max(5.0, o.duration_s / 20);
    }
    if (t >= o.duration_s) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  stop = true;
  // RSS is judged on the samples taken under load; requests still running finish (or hit
  // their deadline) before the report.
  const double run_s = MsSince(start) / 1000;
  for (std::thread& t : threads) t.join();
  double elapsed = MsSince(start) / 1000;
  std::vector<Outcome> outcomes = stats.Snapshot();
  Summary s = Summarize(outcomes, rss, run_s, o.warmup_s, o.streams);
  if (o.pid > 0) {
    std::cout << "after the clients stopped (" << static_cast<int>(elapsed - run_s)
              << " s to drain): server VmRSS " << ReadRssKiB(o.pid) << " KiB\n";
  }
  std::cout << s.text;
  if (!o.json.empty()) std::ofstream(o.json) << s.json;
  bool ok = s.unexpected == 0 && s.max_stall_s <= o.max_stall_s &&
            s.rss_growth_kib <= o.max_rss_growth_mib * 1024;
  std::cout << (ok ? "PASS" : "FAIL") << "\n";
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace vlmd::load

int main(int argc, char** argv) { return vlmd::load::Main(argc, argv); }
