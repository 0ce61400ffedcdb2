// A short soak (CI): vlmd_load with 16 streams for 20 s against a real server serving the tiny
// model and the fixture model with its PEFT adapter, with images, cancellations and deadlines.
// Every outcome must be expected, the server's RSS flat after warm-up, every slot free again
// afterwards (running and waiting gauges at 0) and the server healthy.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "tests/common/http_client.h"
#include "tests/e2e/harness.h"

namespace vlmd::e2e {
namespace {

double Gauge(const std::string& metrics, const std::string& name, const std::string& model) {
  std::string key = "\n" + name + "{model=\"" + model + "\"} ";
  size_t at = metrics.find(key);
  return at == std::string::npos ? -1 : std::stod(metrics.substr(at + key.size()));
}

TEST(LoadE2E, ShortSoakWithImagesAdaptersCancellationsAndDeadlines) {
  TempDir dir;
  std::string fixtures = SourceDir() + "/tests/fixtures";
  std::string yaml = "models:\n  tiny: " + TinyModelDir() + "\n  gqa: " + fixtures +
                     "/models/gqa_tied\nadapters:\n  fixture: {path: " + fixtures +
                     "/lora/llm_r4, model: gqa}\nallowed_roots: [" + fixtures +
                     "]\n"
                     "limits:\n  max_running: 8\n  queue_size: 256\n"
                     "  max_concurrent_requests: 512\n";
  std::string error;
  auto server = ServerProcess::Start(yaml, dir.path(), {}, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string json = dir.Join("load.json");
  ProcessResult r = RunProcess({VLMD_LOAD_BINARY,
                                "--addr",
                                server->address(),
                                "--pid",
                                std::to_string(server->pid()),
                                "--streams",
                                "16",
                                "--duration",
                                "20",
                                "--warmup",
                                "6",
                                "--model",
                                "tiny",
                                "--adapter-model",
                                "gqa",
                                "--adapter",
                                "fixture",
                                "--image",
                                fixtures + "/images/tiny_20x15.png",
                                "--image",
                                fixtures + "/images/formula_176x53_p.png",
                                "--cancel",
                                "0.15",
                                "--deadline",
                                "0.15",
                                "--deadline-ms",
                                "150",
                                "--max-new-tokens",
                                "16",
                                "--max-rss-growth-mib",
                                "24",
                                "--max-stall",
                                "10",
                                "--json",
                                json},
                               {}, 120);
  std::cout << r.out << r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("PASS"), std::string::npos);
  // Every slot is free again: nothing running or waiting once the clients are gone.
  std::string metrics;
  for (int i = 0; i < 50; ++i) {
    metrics = testing::HttpGet(server->metrics_port(), "/metrics").body;
    if (Gauge(metrics, "vlmd_requests_running", "tiny") == 0 &&
        Gauge(metrics, "vlmd_requests_running", "gqa") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const char* model : {"tiny", "gqa"}) {
    EXPECT_EQ(Gauge(metrics, "vlmd_requests_running", model), 0) << model;
    EXPECT_EQ(Gauge(metrics, "vlmd_requests_waiting", model), 0) << model;
  }
  v1::InferResponse out;
  grpc::Status s = Infer(*server->Stub(), TextRequest("still there?", 4), &out, 30);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace vlmd::e2e
