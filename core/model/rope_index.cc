// get_rope_index (spec/qwen2vl.md §6.1): M-RoPE positions of one unpadded sequence.
#include <algorithm>

#include "core/model/qwen2vl.h"

namespace vlmd {
namespace {

struct Streams {
  std::vector<int64_t>* t;
  std::vector<int64_t>* h;
  std::vector<int64_t>* w;
  int64_t next = 0;  // max position so far + 1

  void Text(int64_t count) {
    for (int64_t i = 0; i < count; ++i) Push(next, next, next);
  }
  void Push(int64_t a, int64_t b, int64_t c) {
    t->push_back(a);
    h->push_back(b);
    w->push_back(c);
    next = std::max(next, std::max(a, std::max(b, c)) + 1);
  }
};

}  // namespace

RopeIndex ComputeRopeIndex(const std::vector<int32_t>& ids, const ModelConfig& config,
                           const std::vector<GridThw>& grids) {
  RopeIndex r;
  Streams s{&r.t, &r.h, &r.w};
  const int64_t merge = config.vision.spatial_merge_size;
  const int64_t n = static_cast<int64_t>(ids.size());
  size_t image = 0;
  int64_t i = 0;
  while (i < n) {
    if (ids[i] != config.image_token_id || image >= grids.size()) {
      s.Text(1);
      ++i;
      continue;
    }
    const GridThw& g = grids[image++];
    const int64_t lt = g[0], lh = g[1] / merge, lw = g[2] / merge;
    const int64_t base = s.next;
    for (int64_t ti = 0; ti < lt; ++ti) {
      for (int64_t hi = 0; hi < lh; ++hi) {
        for (int64_t wi = 0; wi < lw; ++wi) s.Push(base + ti, base + hi, base + wi);
      }
    }
    i += lt * lh * lw;
  }
  r.delta = s.next - n;
  return r;
}

}  // namespace vlmd
