// Training-curve PNGs as SWIFT writes them into images/ (spec/swift.md §3, tb_utils.py): one
// line plot per tag, the raw values faint and TensorBoard-smoothed values bold, with axes,
// ticks and the tag as title.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/train/canvas.h"
#include "core/train/sink.h"

namespace vlmd {

// TensorBoard's scalar smoothing: a debiased exponential moving average,
//   last = last * w + (1 - w) * v;  n += 1;  smoothed = last / (1 - w^n)   (last starts at 0),
// where non-finite values are passed through without updating the average, and a series whose
// values are all equal is returned unchanged. Pure.
std::vector<double> SmoothTensorBoard(const std::vector<double>& values, double weight);

// Round tick positions (1, 2 or 5 times a power of ten apart; about `target` of them) inside
// [lo, hi]. `min_step` bounds the spacing from below (1 for step counts).
struct Ticks {
  std::vector<double> values;
  double step = 1;
};
// See Ticks. Empty when hi <= lo.
Ticks NiceTicks(double lo, double hi, int target, double min_step = 0);
// A tick label with just enough digits for `step`; scientific notation for very small or
// large magnitudes (e.g. learning rates: "2.0e-05").
std::string FormatTick(double value, double step, double max_abs);

// One tag's points in step order.
struct PlotSeries {
  std::vector<int64_t> steps;
  std::vector<double> values;
};

// The points ordered by step; when a step occurs more than once (a resumed job re-logging the
// steps after its checkpoint) the value added last wins. Pure.
PlotSeries SortedByStep(const PlotSeries& series);

// Renders `series` as an 800x500 line plot titled `title`. Pure.
Canvas RenderPlot(const std::string& title, const PlotSeries& series, double smoothing);

// Collects train/loss, train/acc, train/learning_rate, train/grad_norm, eval/loss, eval/acc
// (and eval/<extra>; not eval/runtime and the eval speeds) and writes <images_dir>/<tag with '/' ->
// '_'>.png for every tag with data at each checkpoint and at the end of the job. Files are replaced
// atomically. Thread-safe.
class PlotWriter : public TrainingSink {
 public:
  explicit PlotWriter(std::string images_dir, double smoothing = 0.9)
      : images_dir_(std::move(images_dir)), smoothing_(smoothing) {}

  void OnTrainLog(const TrainLog& log) override;
  void OnEvalLog(const EvalLog& log) override;
  void OnCheckpoint(const CheckpointEvent& event) override;
  void OnFinish(const TrainSummary& summary) override;

  // Writes every plot now (creating images_dir). Returns the first error, naming the file.
  Status WriteAll();
  // Adds one point to a tag's series (tags that are not plotted are ignored).
  void Add(const std::string& tag, int64_t step, double value);
  // Adds the plotted tags of every event file in `runs_dir` (oldest file first), so that a
  // resumed job's plots show the whole run. Call it before this job's TensorBoardSink writes.
  // A missing folder is no error; a corrupt file is (DATA_LOSS naming it).
  Status LoadHistory(const std::string& runs_dir);

 private:
  std::mutex mu_;
  std::string images_dir_;
  double smoothing_;
  std::map<std::string, PlotSeries> series_;
};

}  // namespace vlmd
