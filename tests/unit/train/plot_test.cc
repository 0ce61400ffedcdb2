#include "core/train/plot.h"

#include <stb_image.h>

#include <cmath>

#include "core/base/file_util.h"
#include "core/train/tfrecord.h"
#include "gtest/gtest.h"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

TEST(SmoothTest, DebiasedExponentialMovingAverage) {
  const std::vector<double> s = SmoothTensorBoard({1, 0, 0.5}, 0.5);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0], 1.0);  // 0.5 / (1 - 0.5): the first point is its own value
  EXPECT_DOUBLE_EQ(s[1], 0.25 / 0.75);
  EXPECT_DOUBLE_EQ(s[2], (0.125 + 0.25) / 0.875);
  // Weight 0.9 as the plots use: the second value moves 1/1.9 of the way.
  const std::vector<double> w = SmoothTensorBoard({2, 4}, 0.9);
  EXPECT_NEAR(w[1], (0.9 * 0.2 + 0.4) / (1 - 0.81), 1e-12);
  EXPECT_NEAR(w[1], 2 + 2 / 1.9, 1e-12);
}

TEST(SmoothTest, ConstantSeriesAndNonFiniteValues) {
  EXPECT_EQ(SmoothTensorBoard({3, 3, 3}, 0.9), (std::vector<double>{3, 3, 3}));
  EXPECT_TRUE(SmoothTensorBoard({}, 0.9).empty());
  const std::vector<double> s = SmoothTensorBoard({1, NAN, 0}, 0.5);
  EXPECT_DOUBLE_EQ(s[0], 1.0);
  EXPECT_TRUE(std::isnan(s[1]));
  EXPECT_DOUBLE_EQ(s[2], 0.25 / 0.75);  // the NaN neither counted nor moved the average
  EXPECT_EQ(SmoothTensorBoard({1, 2}, 0.0), (std::vector<double>{1, 2}));
}

TEST(TicksTest, RoundStepsAndLabels) {
  Ticks t = NiceTicks(0, 1, 5);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  ASSERT_EQ(t.values.size(), 6u);
  EXPECT_DOUBLE_EQ(t.values[3], 0.6000000000000001);
  t = NiceTicks(3, 97, 8, 1.0);
  EXPECT_DOUBLE_EQ(t.step, 10);
  EXPECT_EQ(t.values.front(), 10);
  EXPECT_EQ(t.values.back(), 90);
  EXPECT_DOUBLE_EQ(NiceTicks(1, 4, 8, 1.0).step, 1);  // never below one step
  EXPECT_TRUE(NiceTicks(1, 1, 5).values.empty());
  EXPECT_EQ(FormatTick(0.6000000000000001, 0.2, 1), "0.6");
  EXPECT_EQ(FormatTick(250, 50, 300), "250");
  EXPECT_EQ(FormatTick(1.25, 0.05, 2), "1.25");
  EXPECT_EQ(FormatTick(4e-5, 2e-5, 1e-4), "4.0e-05");
  EXPECT_EQ(FormatTick(2e6, 1e6, 3e6), "2e+06");
}

TEST(PlotTest, WriterProducesDecodablePngsPerTag) {
  TempDir dir;
  PlotWriter plots(dir.Path("images"));
  for (int step = 5; step <= 200; step += 5) {
    TrainLog log;
    log.step = step;
    log.loss = 2.0 * std::exp(-step / 60.0) + 0.1 * std::sin(step);
    log.acc = 1 - log.loss / 3;
    log.learning_rate = 1e-4 * std::cos(step / 200.0 * 1.5);
    log.grad_norm = 1 + 0.2 * std::cos(step * 0.7);
    plots.OnTrainLog(log);
  }
  EvalLog eval;
  eval.step = 50;
  eval.eval_loss = 0.8;
  plots.OnEvalLog(eval);
  plots.OnCheckpoint(CheckpointEvent{50, "/c", true, {}});
  for (const char* name : {"train_loss", "train_acc", "train_learning_rate", "train_grad_norm",
                           "eval_loss", "eval_acc"}) {
    const std::string path = dir.Path(std::string("images/") + name + ".png");
    StatusOr<std::string> png = ReadFile(path);
    ASSERT_TRUE(png.ok()) << png.status();
    int w = 0, h = 0, channels = 0;
    unsigned char* pixels =
        stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png->data()),
                              static_cast<int>(png->size()), &w, &h, &channels, 3);
    ASSERT_NE(pixels, nullptr) << name;
    EXPECT_EQ(w, 800);
    EXPECT_EQ(h, 500);
    int64_t ink = 0, line = 0, title = 0;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const unsigned char* p = pixels + (static_cast<size_t>(y) * w + x) * 3;
        ink += p[0] != 255 || p[1] != 255 || p[2] != 255;
        line += p[0] > 200 && p[1] < 160 && p[2] < 120;  // the bold orange curve
        title += y < 40 && p[0] < 100;
      }
    }
    stbi_image_free(pixels);
    EXPECT_GT(ink, 5000) << name;
    EXPECT_GT(line, std::string(name).rfind("eval", 0) == 0 ? 10 : 1000) << name;
    EXPECT_GT(title, 50) << name;  // the tag is drawn at the top
  }
}

TEST(PlotTest, RenderIsStableForOddInput) {
  PlotSeries one{{7}, {0.5}};
  Canvas c = RenderPlot("eval/loss", one, 0.9);
  EXPECT_EQ(c.width(), 800);
  PlotSeries flat{{1, 2, 3}, {0, 0, 0}};
  RenderPlot("flat", flat, 0.9);
  PlotSeries gaps{{1, 2, 3}, {NAN, INFINITY, 1}};
  RenderPlot("gaps", gaps, 0.9);
  RenderPlot("empty", PlotSeries(), 0.9);
  StatusOr<std::string> png = c.EncodePng();
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->substr(1, 3), "PNG");
  TempDir dir;
  PlotWriter nothing(dir.Path("images"));
  EXPECT_TRUE(nothing.WriteAll().ok());
  EXPECT_FALSE(PathExists(dir.Path("images")));  // no tags, no folder
}

}  // namespace
}  // namespace vlmd

namespace vlmd {
namespace {

int64_t Ink(const Canvas& c) {
  int64_t ink = 0;
  for (int y = 0; y < c.height(); ++y) {
    for (int x = 0; x < c.width(); ++x) ink += c.At(x, y).r == 0;
  }
  return ink;
}

TEST(CanvasTest, TextGlyphsAreComplete) {
  // stb_easy_font's "0": .##. / #..# / #.## / ##.# / #..# / #..# / .##.  = 16 pixels.
  Canvas one(20, 12, {255, 255, 255});
  one.DrawText("0", 1, 1, 1, {0, 0, 0});
  EXPECT_EQ(Ink(one), 16);
  EXPECT_EQ(one.At(1, 2).r, 0);  // left stroke
  EXPECT_EQ(one.At(4, 2).r, 0);  // right stroke
  Canvas scaled(60, 30, {255, 255, 255});
  scaled.DrawText("0", 1, 1, 2, {0, 0, 0});
  EXPECT_EQ(Ink(scaled), 64);
  Canvas many(400, 12, {255, 255, 255});
  many.DrawText("0000000000", 0, 0, 1, {0, 0, 0});
  EXPECT_EQ(Ink(many), 160);
  EXPECT_EQ(Canvas::TextWidth("0", 2), 2 * Canvas::TextWidth("0", 1));
}

TEST(CanvasTest, PolylineCoverageIsBlendedOnce) {
  Canvas c(20, 20, {255, 255, 255});
  // Two segments over the same pixels at alpha 0.5: not darker than one.
  c.DrawPolyline({{2, 10.5}, {18, 10.5}, {2, 10.5}}, 1.0, {0, 0, 0}, 0.5, {0, 0, 20, 20});
  EXPECT_EQ(c.At(10, 10).r, 128);
  EXPECT_EQ(c.At(10, 5).r, 255);
  c.DrawPolyline({{0, 0}, {19, 19}}, 3.0, {0, 0, 0}, 1.0, {0, 0, 10, 20});  // clipped at x = 10
  EXPECT_EQ(c.At(5, 5).r, 0);
  EXPECT_EQ(c.At(15, 15).r, 255);
}

}  // namespace
}  // namespace vlmd

namespace vlmd {
namespace {

TEST(PlotHistoryTest, SortedByStepKeepsTheLastWrite) {
  PlotSeries s = SortedByStep({{10, 5, 10, 15}, {1, 2, 3, 4}});
  EXPECT_EQ(s.steps, (std::vector<int64_t>{5, 10, 15}));
  EXPECT_EQ(s.values, (std::vector<double>{2, 3, 4}));
}

TEST(PlotHistoryTest, ResumedJobPlotsTheWholeRun) {
  testing::TempDir dir;
  // The first run died in the middle of a record; the resumed run re-logged step 10.
  std::string first = FrameRecord(EncodeFileVersionEvent(1000));
  for (int step : {5, 10, 15}) first += FrameRecord(EncodeScalarEvent(1000, step, "train/loss", 1));
  first += FrameRecord(EncodeScalarEvent(1000, 1, "eval/runtime", 9));
  first += FrameRecord(EncodeScalarEvent(1000, 20, "train/loss", 1)).substr(0, 10);
  dir.Write("runs/events.out.tfevents.1000.host.1.0", first);
  dir.Write("runs/events.out.tfevents.2000.host.2.0",
            FrameRecord(EncodeFileVersionEvent(2000)) +
                FrameRecord(EncodeScalarEvent(2000, 10, "train/loss", 0.5)) +
                FrameRecord(EncodeScalarEvent(2000, 20, "train/loss", 0.25)));
  dir.Write("runs/notes.txt", "not an event file");
  PlotWriter plots(dir.Path("images"));
  ASSERT_TRUE(plots.LoadHistory(dir.Path("runs")).ok());
  ASSERT_TRUE(plots.WriteAll().ok());
  EXPECT_TRUE(PathExists(dir.Path("images/train_loss.png")));
  EXPECT_FALSE(PathExists(dir.Path("images/eval_runtime.png")));  // timings are not plotted
  EXPECT_TRUE(plots.LoadHistory(dir.Path("no-runs-yet")).ok());
  std::string damaged = first;
  damaged[20] ^= 1;
  dir.Write("runs/events.out.tfevents.3000.host.3.0", damaged);
  EXPECT_EQ(plots.LoadHistory(dir.Path("runs")).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vlmd
