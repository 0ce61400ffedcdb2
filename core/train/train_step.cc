#include "core/train/train_step.h"

#include <ATen/core/grad_mode.h>

#include "core/model/torch_compat.h"

namespace vlmd {

int64_t TrainExample::LabelTokens() const {
  int64_t n = 0;
  for (size_t i = 1; i < labels.size(); ++i) n += labels[i] != -100;
  return n;
}

namespace {

// The packed layout of a micro-batch and the rows/targets the loss covers.
struct Packed {
  std::vector<StepSequence> seqs;
  std::vector<SeqSpan> spans;
  at::Tensor ids, positions, label_rows, targets;
};

Packed Pack(const Qwen2VL& model, const LoraAdapter& adapter,
            const std::vector<const TrainExample*>& batch) {
  Packed p;
  std::vector<int64_t> ids, t, h, w, rows, targets;
  for (const TrainExample* ex : batch) {
    int64_t delta = 0;
    StepSequence s = PrefillSequence(model, ex->ids, &ex->images, &delta);
    s.adapter = &adapter;
    int64_t begin = static_cast<int64_t>(ids.size());
    p.spans.push_back({begin, static_cast<int64_t>(ex->ids.size()), 0, nullptr});
    ids.insert(ids.end(), ex->ids.begin(), ex->ids.end());
    t.insert(t.end(), s.pos_t.begin(), s.pos_t.end());
    h.insert(h.end(), s.pos_h.begin(), s.pos_h.end());
    w.insert(w.end(), s.pos_w.begin(), s.pos_w.end());
    for (size_t i = 0; i + 1 < ex->labels.size(); ++i) {
      if (ex->labels[i + 1] == -100) continue;
      rows.push_back(begin + static_cast<int64_t>(i));
      targets.push_back(ex->labels[i + 1]);
    }
    p.seqs.push_back(std::move(s));
  }
  at::Device d = model.device();
  p.ids = at::tensor(ids, at::kLong).to(d);
  p.positions = at::stack({at::tensor(t, at::kLong), at::tensor(h, at::kLong),
                           at::tensor(w, at::kLong)}).to(d);
  p.label_rows = at::tensor(rows, at::kLong).to(d);
  p.targets = at::tensor(targets, at::kLong).to(d);
  return p;
}

at::Tensor Embeddings(const Qwen2VL& model, const LoraAdapter& adapter, const Packed& p,
                      const StepOptions& o) {
  std::vector<at::Tensor> pixels;
  std::vector<GridThw> grids;
  for (const StepSequence& s : p.seqs) {
    if (s.images == nullptr || !s.images->pixel_values.defined()) continue;
    pixels.push_back(s.images->pixel_values);
    grids.insert(grids.end(), s.images->grids.begin(), s.images->grids.end());
  }
  at::Tensor image_embeds;
  if (!pixels.empty()) {
    at::AutoGradMode grad(o.training && o.vision_trainable);
    std::vector<const LoraAdapter*> adapters(grids.size(), &adapter);
    image_embeds = model.EncodeImages(pixels.size() == 1 ? pixels[0] : at::cat(pixels, 0), grids,
                                      adapters, o.lora_dropout, o.training);
  }
  return model.EmbedWithImages(p.ids, image_embeds);
}

// Saved RNG state of the devices dropout draws from, so a recomputed layer sees the same masks.
struct RngState {
  at::Tensor cpu, cuda;
  static RngState Save(at::Device device) {
    RngState s;
    s.cpu = compat::GeneratorState(at::Device(at::kCPU));
    if (device.is_cuda()) s.cuda = compat::GeneratorState(device);
    return s;
  }
  void Restore(at::Device device) const {
    compat::SetGeneratorState(at::Device(at::kCPU), cpu);
    if (device.is_cuda()) compat::SetGeneratorState(device, cuda);
  }
};

MicroBatchResult Loss(const Qwen2VL& model, const at::Tensor& hidden, const Packed& p,
                      at::Tensor* loss) {
  at::Tensor h = model.FinalNorm(hidden.index_select(0, p.label_rows));
  at::Tensor logits = model.Logits(h).to(at::kFloat);
  *loss = at::cross_entropy_loss(logits, p.targets, {}, at::Reduction::Sum);
  MicroBatchResult r;
  r.loss_sum = loss->item<double>();
  r.tokens = p.targets.size(0);
  r.correct = logits.argmax(-1).eq(p.targets).sum().item<int64_t>();
  return r;
}

}  // namespace

MicroBatchResult ForwardBackward(const Qwen2VL& model, const LoraAdapter& adapter,
                                 const std::vector<const TrainExample*>& batch,
                                 const StepOptions& o) {
  Packed p = Pack(model, adapter, batch);
  at::AutoGradMode grad_mode(o.training);
  LoraContext lora = BuildLoraContext({&adapter}, {p.ids.size(0)}, model.device(),
                                      o.lora_dropout, o.training);
  at::Tensor embeds = Embeddings(model, adapter, p, o);
  auto rotary = model.RotaryTables(p.positions);
  const int layers = model.config().text.num_hidden_layers;
  at::Tensor loss;
  if (!o.training || !o.gradient_checkpointing) {
    at::Tensor h = embeds;
    for (int l = 0; l < layers; ++l) h = model.DecoderLayer(l, h, rotary, p.spans, &lora);
    MicroBatchResult r = Loss(model, h, p, &loss);
    if (o.training && r.tokens > 0) (loss * o.loss_scale).backward();
    return r;
  }
  // Checkpointed: keep only each layer's input, recompute layers one by one during backward.
  std::vector<at::Tensor> inputs;
  std::vector<RngState> rng;
  {
    at::NoGradGuard no_grad;
    at::Tensor h = embeds.detach();
    for (int l = 0; l < layers; ++l) {
      inputs.push_back(h);
      rng.push_back(RngState::Save(model.device()));
      h = model.DecoderLayer(l, h, rotary, p.spans, &lora);
    }
    inputs.push_back(h);
  }
  at::Tensor top = inputs.back().requires_grad_(true);
  MicroBatchResult r = Loss(model, top, p, &loss);
  if (r.tokens == 0) return r;
  (loss * o.loss_scale).backward();
  at::Tensor grad = top.grad();
  for (int l = layers - 1; l >= 0; --l) {
    RngState now = RngState::Save(model.device());
    rng[l].Restore(model.device());
    at::Tensor x = inputs[l].detach().requires_grad_(true);
    at::Tensor y = model.DecoderLayer(l, x, rotary, p.spans, &lora);
    y.backward(grad);
    now.Restore(model.device());
    grad = x.grad();
  }
  if (embeds.requires_grad()) embeds.backward(grad);
  return r;
}

}  // namespace vlmd
