#include "core/engine/step.h"

namespace vlmd {

ImageBatch ToImageBatch(const std::vector<PixelPatches>& images) {
  ImageBatch batch;
  if (images.empty()) return batch;
  std::vector<at::Tensor> rows;
  for (const PixelPatches& p : images) {
    rows.push_back(at::from_blob(const_cast<float*>(p.values.data()),
                                 {p.num_patches(), p.patch_dim}, at::kFloat)
                       .clone());
    batch.grids.push_back({p.grid_t, p.grid_h, p.grid_w});
  }
  batch.pixel_values = rows.size() == 1 ? rows[0] : at::cat(rows, 0);
  return batch;
}

StepSequence PrefillSequence(const Qwen2VL& model, const std::vector<int32_t>& ids,
                             const ImageBatch* images, int64_t* rope_delta) {
  static const std::vector<GridThw> kNoGrids;
  RopeIndex rope = ComputeRopeIndex(ids, model.config(), images ? images->grids : kNoGrids);
  StepSequence s;
  s.ids = ids;
  s.pos_t = std::move(rope.t);
  s.pos_h = std::move(rope.h);
  s.pos_w = std::move(rope.w);
  s.images = images;
  *rope_delta = rope.delta;
  return s;
}

StepSequence DecodeSequence(int32_t token, int64_t past, int64_t rope_delta) {
  StepSequence s;
  s.ids = {token};
  int64_t p = past + rope_delta;
  s.pos_t = s.pos_h = s.pos_w = {p};
  s.past = past;
  return s;
}

namespace {

// Encodes the images of every prefill sequence in one vision pass.
at::Tensor EncodeAllImages(const Qwen2VL& model, const std::vector<StepSequence>& seqs) {
  std::vector<at::Tensor> pixels;
  std::vector<GridThw> grids;
  std::vector<const LoraAdapter*> adapters;
  bool any_adapter = false;
  for (const StepSequence& s : seqs) {
    if (s.images == nullptr || !s.images->pixel_values.defined()) continue;
    pixels.push_back(s.images->pixel_values);
    for (const GridThw& g : s.images->grids) {
      grids.push_back(g);
      adapters.push_back(s.adapter);
      any_adapter |= s.adapter != nullptr;
    }
  }
  if (pixels.empty()) return at::Tensor();
  at::Tensor all = pixels.size() == 1 ? pixels[0] : at::cat(pixels, 0);
  if (!any_adapter) adapters.clear();
  return model.EncodeImages(all, grids, adapters);
}

}  // namespace

at::Tensor RunStep(const Qwen2VL& model, const std::vector<StepSequence>& seqs) {
  std::vector<int64_t> ids, t, h, w, lengths;
  std::vector<SeqSpan> spans;
  std::vector<const LoraAdapter*> adapters;
  bool any_adapter = false;
  for (const StepSequence& s : seqs) {
    SeqSpan span{static_cast<int64_t>(ids.size()), static_cast<int64_t>(s.ids.size()), s.past,
                 s.cache};
    spans.push_back(span);
    ids.insert(ids.end(), s.ids.begin(), s.ids.end());
    t.insert(t.end(), s.pos_t.begin(), s.pos_t.end());
    h.insert(h.end(), s.pos_h.begin(), s.pos_h.end());
    w.insert(w.end(), s.pos_w.begin(), s.pos_w.end());
    lengths.push_back(span.length);
    adapters.push_back(s.adapter);
    any_adapter |= s.adapter != nullptr;
  }
  at::Tensor id_tensor = at::tensor(ids, at::kLong).to(model.device());
  at::Tensor positions =
      at::stack({at::tensor(t, at::kLong), at::tensor(h, at::kLong), at::tensor(w, at::kLong)})
          .to(model.device());
  // Image features go to the placeholders of the prompts that carry images, never to a
  // placeholder id that a decode row sampled.
  std::vector<int64_t> image_rows;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const StepSequence& s = seqs[i];
    if (s.images == nullptr || !s.images->pixel_values.defined()) continue;
    for (size_t j = 0; j < s.ids.size(); ++j) {
      if (s.ids[j] == model.config().image_token_id)
        image_rows.push_back(spans[i].begin + static_cast<int64_t>(j));
    }
  }
  at::Tensor embeds = model.EmbedWithImageRows(id_tensor, EncodeAllImages(model, seqs), image_rows);
  LoraContext lora;
  if (any_adapter) lora = BuildLoraContext(adapters, lengths, model.device());
  return model.Decode(embeds, positions, spans, any_adapter ? &lora : nullptr);
}

at::Tensor LastRows(const std::vector<StepSequence>& seqs, at::Device device) {
  std::vector<int64_t> rows;
  int64_t end = 0;
  for (const StepSequence& s : seqs) {
    end += static_cast<int64_t>(s.ids.size());
    rows.push_back(end - 1);
  }
  return at::tensor(rows, at::kLong).to(device);
}

}  // namespace vlmd
