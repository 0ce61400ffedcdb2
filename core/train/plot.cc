#include "core/train/plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/base/file_util.h"
#include "core/base/logging.h"
#include "core/train/tensorboard.h"

namespace vlmd {
namespace {

constexpr int kWidth = 800, kHeight = 500;
constexpr int kLeft = 110, kRight = kWidth - 32, kTop = 52, kBottom = kHeight - 56;
constexpr Rgb kBackground{255, 255, 255};
constexpr Rgb kGrid{228, 228, 228};
constexpr Rgb kAxis{90, 90, 90};
constexpr Rgb kText{40, 40, 40};
constexpr Rgb kLine{255, 112, 67};  // TensorBoard's orange
constexpr size_t kMaxDotted = 20;

// The range of the finite values in `a` and `b`, padded by 5% (a flat range gets +-1 or 10%).
std::pair<double, double> ValueRange(const std::vector<double>& a, const std::vector<double>& b) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const std::vector<double>* v : {&a, &b}) {
    for (double x : *v) {
      if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    }
  }
  if (!std::isfinite(lo)) return {0.0, 1.0};
  if (hi - lo <= 0) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    return {lo - pad, hi + pad};
  }
  const double pad = (hi - lo) * 0.05;
  return {lo - pad, hi + pad};
}

// Maps data coordinates to pixels inside the plot area.
struct Mapping {
  double x_lo, x_hi, y_lo, y_hi;
  double X(double x) const { return kLeft + (x - x_lo) / (x_hi - x_lo) * (kRight - kLeft); }
  double Y(double y) const { return kBottom - (y - y_lo) / (y_hi - y_lo) * (kBottom - kTop); }
};

void DrawAxes(const Mapping& m, Canvas* canvas) {
  const Ticks x_ticks = NiceTicks(m.x_lo, m.x_hi, 8, 1.0);
  const Ticks y_ticks = NiceTicks(m.y_lo, m.y_hi, 6);
  const double y_abs = std::max(std::abs(m.y_lo), std::abs(m.y_hi));
  for (double x : x_ticks.values) {
    const int px = static_cast<int>(std::lround(m.X(x)));
    canvas->FillRect(px, kTop, px + 1, kBottom, kGrid);
    canvas->FillRect(px, kBottom, px + 1, kBottom + 5, kAxis);
    const std::string label = FormatTick(x, x_ticks.step, std::abs(m.x_hi));
    canvas->DrawText(label, px - Canvas::TextWidth(label, 2) / 2, kBottom + 10, 2, kText);
  }
  for (double y : y_ticks.values) {
    const int py = static_cast<int>(std::lround(m.Y(y)));
    canvas->FillRect(kLeft, py, kRight, py + 1, kGrid);
    canvas->FillRect(kLeft - 5, py, kLeft, py + 1, kAxis);
    const std::string label = FormatTick(y, y_ticks.step, y_abs);
    canvas->DrawText(label, kLeft - 10 - Canvas::TextWidth(label, 2),
                     py - Canvas::TextHeight(2) / 2, 2, kText);
  }
  canvas->FillRect(kLeft, kTop, kLeft + 1, kBottom + 1, kAxis);
  canvas->FillRect(kLeft, kBottom, kRight + 1, kBottom + 1, kAxis);
  canvas->DrawText("step", kRight - Canvas::TextWidth("step", 2), kBottom + 32, 2, kText);
}

// The tags PlotWriter draws: SWIFT's four train curves and every eval metric but the timings.
bool IsPlotted(const std::string& tag) {
  for (const char* t : {"train/loss", "train/acc", "train/learning_rate", "train/grad_norm"}) {
    if (tag == t) return true;
  }
  for (const char* t : {"eval/runtime", "eval/samples_per_second", "eval/steps_per_second"}) {
    if (tag == t) return false;
  }
  return tag.rfind("eval/", 0) == 0;
}

std::vector<PointF> ToPixels(const Mapping& m, const std::vector<int64_t>& steps,
                             const std::vector<double>& values) {
  std::vector<PointF> points;
  for (size_t i = 0; i < steps.size() && i < values.size(); ++i) {
    if (std::isfinite(values[i])) points.push_back({m.X(steps[i]), m.Y(values[i])});
  }
  return points;
}

}  // namespace

std::vector<double> SmoothTensorBoard(const std::vector<double>& values, double weight) {
  if (values.empty() ||
      std::all_of(values.begin(), values.end(), [&](double v) { return v == values.front(); })) {
    return values;
  }
  std::vector<double> out;
  out.reserve(values.size());
  double last = 0;
  int64_t count = 0;
  for (double v : values) {
    if (!std::isfinite(v)) {
      out.push_back(v);
      continue;
    }
    last = last * weight + (1 - weight) * v;
    ++count;
    const double debias = weight == 1.0 ? 1.0 : 1.0 - std::pow(weight, static_cast<double>(count));
    out.push_back(last / debias);
  }
  return out;
}

Ticks NiceTicks(double lo, double hi, int target, double min_step) {
  Ticks ticks;
  if (!(hi > lo) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double factor = normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10;
  ticks.step = std::max(factor * magnitude, min_step);
  const double first = std::ceil(lo / ticks.step - 1e-9);
  for (int64_t i = 0;; ++i) {
    const double v = (first + static_cast<double>(i)) * ticks.step;
    if (v > hi + ticks.step * 1e-9) break;
    ticks.values.push_back(std::abs(v) < ticks.step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string FormatTick(double value, double step, double max_abs) {
  if (max_abs >= 1e6 || (max_abs > 0 && max_abs < 1e-3)) {
    const int digits = std::max(
        0, static_cast<int>(std::floor(std::log10(max_abs)) - std::floor(std::log10(step) + 1e-9)));
    return absl::StrFormat("%.*e", digits, value);
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return absl::StrFormat("%.*f", decimals, value);
}

Canvas RenderPlot(const std::string& title, const PlotSeries& series, double smoothing) {
  Canvas canvas(kWidth, kHeight, kBackground);
  const std::vector<double> smoothed = SmoothTensorBoard(series.values, smoothing);
  const auto [y_lo, y_hi] = ValueRange(series.values, smoothed);
  double x_lo = series.steps.empty() ? 0 : static_cast<double>(series.steps.front());
  double x_hi = series.steps.empty() ? 1 : static_cast<double>(series.steps.back());
  if (x_hi <= x_lo) x_lo -= 1, x_hi += 1;
  const Mapping m{x_lo, x_hi, y_lo, y_hi};
  DrawAxes(m, &canvas);
  const ClipRect clip{kLeft + 1, kTop, kRight + 1, kBottom};
  canvas.DrawPolyline(ToPixels(m, series.steps, series.values), 1.5, kLine, 0.3, clip);
  const std::vector<PointF> bold = ToPixels(m, series.steps, smoothed);
  canvas.DrawPolyline(bold, 2.5, kLine, 1.0, clip);
  // Few points (evaluations) also get a dot each, so a single one is visible.
  if (bold.size() <= kMaxDotted) {
    for (const PointF& p : bold) canvas.DrawPolyline({p}, 7.0, kLine, 1.0, clip);
  }
  canvas.DrawText(title, (kWidth - Canvas::TextWidth(title, 3)) / 2, 14, 3, kText);
  return canvas;
}

PlotSeries SortedByStep(const PlotSeries& series) {
  const size_t n = std::min(series.steps.size(), series.values.size());
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return series.steps[a] < series.steps[b]; });
  PlotSeries out;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    if (!out.steps.empty() && out.steps.back() == series.steps[i]) {
      out.values.back() = series.values[i];  // stable order: the later write wins
      continue;
    }
    out.steps.push_back(series.steps[i]);
    out.values.push_back(series.values[i]);
  }
  return out;
}

void PlotWriter::Add(const std::string& tag, int64_t step, double value) {
  if (!IsPlotted(tag)) return;
  std::lock_guard<std::mutex> lock(mu_);
  PlotSeries& s = series_[tag];
  s.steps.push_back(step);
  s.values.push_back(value);
}

void PlotWriter::OnTrainLog(const TrainLog& log) {
  Add("train/loss", log.step, log.loss);
  Add("train/acc", log.step, log.acc);
  Add("train/learning_rate", log.step, log.learning_rate);
  Add("train/grad_norm", log.step, log.grad_norm);
}

void PlotWriter::OnEvalLog(const EvalLog& log) {
  Add("eval/loss", log.step, log.eval_loss);
  Add("eval/acc", log.step, log.eval_acc);
  for (const auto& [name, value] : log.extra) Add("eval/" + name, log.step, value);
}

Status PlotWriter::WriteAll() {
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(MakeDirs(images_dir_, 0755));
  for (const auto& [tag, series] : series_) {
    const std::string path =
        JoinPath(images_dir_, absl::StrCat(absl::StrReplaceAll(tag, {{"/", "_"}}), ".png"));
    ASSIGN_OR_RETURN(std::string png,
                     RenderPlot(tag, SortedByStep(series), smoothing_).EncodePng());
    RETURN_IF_ERROR(WriteFileAtomic(path, png));
  }
  return absl::OkStatus();
}

Status PlotWriter::LoadHistory(const std::string& runs_dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(runs_dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("events.out.tfevents.", 0) == 0) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());  // the name starts with the creation time
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(auto scalars, ReadTensorBoardScalars(file, /*allow_partial_tail=*/true));
    for (const auto& [tag, points] : scalars) {
      for (const ScalarPoint& p : points) Add(tag, p.step, p.value);
    }
  }
  return absl::OkStatus();
}

void PlotWriter::OnCheckpoint(const CheckpointEvent& event) {
  Status status = WriteAll();
  if (!status.ok()) {
    VLMD_LOG(Warning) << "plots at step " << event.step << ": " << status;
  }
}

void PlotWriter::OnFinish(const TrainSummary& summary) {
  Status status = WriteAll();
  if (!status.ok()) {
    VLMD_LOG(Warning) << "final plots: " << status;
  }
}

}  // namespace vlmd
