#!/usr/bin/env bash
# The vlmd demo, from a fresh clone on a CPU machine: set up and build, render a small LaTeX-OCR
# data set, create the embedded tiny model (random weights), serve it, ask it to read a formula
# (nonsense: it has never been trained), fine-tune a LoRA adapter on the formulas with a job,
# merge it, serve the merged model and the adapter, ask again (now it answers the formula it
# memorised), evaluate, and stop the server. Every step is printed with the command it runs.
#
#   ./scripts/demo.sh                    everything (setup + build first; minutes on 2 cores)
#   SKIP_BUILD=1 ./scripts/demo.sh       reuse ./build
#
# Knobs (environment): DEMO_DIR (default out/demo; wiped first), DEMO_FORMULAS (6: 4 to train
# on, 2 held out), DEMO_EPOCHS (100), DEMO_LR (0.003), DEMO_SEED (1: data and model).
#
# Why these hyperparameters: the tiny model's weights are random and its attention is nearly
# uniform, so the answer must learn to look at the image. Rank-64 LoRA on every linear layer
# (vision tower too: ALL), a high learning rate with a cosine decay, 16 image tokens per image
# (min = max pixels = 12544) and many epochs over a few formulas make it memorise them in a few
# hundred steps; higher rates (>= 0.006) collapse to a formula-independent answer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO_DIR=${DEMO_DIR:-$ROOT/out/demo}
FORMULAS=${DEMO_FORMULAS:-6}
EPOCHS=${DEMO_EPOCHS:-100}
LR=${DEMO_LR:-0.003}
SEED=${DEMO_SEED:-1}
VLMD=${DEMO_VLMD:-$ROOT/build/server/vlmd}
VLMCTL=${DEMO_VLMCTL:-$ROOT/build/client/vlmctl}
QUERY="Using LaTeX to perform OCR on the image."
STEPS=12
STEP=0
T_START=$(date +%s)

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() {
  STEP=$((STEP + 1))
  echo
  bold "== [$STEP/$STEPS] $* ($(( $(date +%s) - T_START ))s)"
}
run() { # prints the command (paths shortened), then runs it
  local shown="$*"
  shown=${shown//$DEMO_DIR/\$DEMO}
  shown=${shown//$ROOT\//}
  printf '$ %s\n' "$shown"
  "$@"
}
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; } # json FILE KEY
row() { # row N FIELD of train.jsonl
  python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2])]; v=r[sys.argv[3]]; print(v[0] if isinstance(v, list) else v)' \
    "$DATA/train.jsonl" "$1" "$2"
}
ask() { # ask LABEL [vlmctl infer flags...]: greedy answer to the OCR query on $IMAGE
  local label=$1; shift
  local answer
  answer=$("$VLMCTL" --addr "$ADDR" infer "$@" --image "$IMAGE" --max-new-tokens 24 \
    --temperature 0 "$QUERY")
  printf '  %-22s %s\n' "$label" "$answer"
  if [ "$answer" = "$EXPECTED" ]; then echo "  -> the formula, exactly"; else echo "  -> not the formula"; fi
}

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    local code=0
    wait "$SERVER_PID" || code=$?
    SERVER_PID=""
    return $code
  fi
}
trap 'stop_server || true' EXIT

start_server() { # start_server [extra vlmd serve flags]: loopback, port 0, metrics on
  rm -f "$DEMO_DIR/ready.json"
  printf '$ vlmd serve --model tiny=$DEMO/model %s\n' \
    "$(echo "$*" | sed "s#$DEMO_DIR#\$DEMO#g")"
  printf '      --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --allowed-root $DEMO --state-dir $DEMO/state --ready-file $DEMO/ready.json\n'
  printf '      --set training.data_root=$DEMO/data\n'
  "$VLMD" serve --model "tiny=$DEMO_DIR/model" "$@" --set "training.data_root=$DEMO_DIR/data" \
    --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --allowed-root "$DEMO_DIR" \
    --state-dir "$DEMO_DIR/state" --ready-file "$DEMO_DIR/ready.json" \
    2>>"$DEMO_DIR/vlmd.log" &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    [ -s "$DEMO_DIR/ready.json" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$DEMO_DIR/vlmd.log"; exit 1; }
    sleep 0.2
  done
  ADDR=$(json "$DEMO_DIR/ready.json" grpc_address)
  METRICS=$(json "$DEMO_DIR/ready.json" metrics_address)
  echo "  vlmd (pid $SERVER_PID) serves gRPC on $ADDR, metrics on http://$METRICS/metrics"
  "$VLMCTL" --addr "$ADDR" health --wait 120 | sed 's/^/  health: /'
}


# ---------------------------------------------------------------------------------------------
step "Set up and build (scripts/setup.sh, scripts/build.sh: vlmd and vlmctl)"
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  echo "  SKIP_BUILD=1: using $VLMD"
else
  run ./scripts/setup.sh
  TARGETS="vlmd vlmctl" run ./scripts/build.sh
fi
T_BUILT=$(date +%s)
case "$(realpath -m "$DEMO_DIR")" in
  / | "$HOME" | "$ROOT") echo "demo: refusing to wipe DEMO_DIR=$DEMO_DIR" >&2; exit 2 ;;
esac
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
DATA=$DEMO_DIR/data/latex-ocr-print

step "Render $FORMULAS formulas with LaTeX (train.jsonl / validation.jsonl + PNG images)"
run python3 scripts/make_latex_data.py --out "$DEMO_DIR/data" --count "$FORMULAS" \
  --style compact --min-tokens 5 --max-tokens 9 --dpi 200 --val-ratio 0.34 --seed "$SEED"
sed 's/^/  /' "$DATA/formulas.txt"
echo "  a row of train.jsonl: $(head -1 "$DATA/train.jsonl")"

step "Create the embedded tiny model (random weights, the full Qwen2 vocabulary)"
run "$VLMD" init-model --preset tiny --seed "$SEED" --out "$DEMO_DIR/model"

step "Serve it on loopback with metrics"
start_server
IMAGE=$DEMO_DIR/data/latex-ocr-print/$(row 0 images)
EXPECTED=$(row 0 response)

step "Ask the untrained model to read a training image"
echo "  image: ${IMAGE#$DEMO_DIR/}   formula: $EXPECTED"
printf '$ vlmctl infer --image %s --max-new-tokens 24 --temperature 0 "%s"\n' \
  "\$DEMO/${IMAGE#$DEMO_DIR/}" "$QUERY"
ask "untrained model:"

step "Fine-tune a LoRA adapter on the training formulas"
# One checkpoint, at the end (save_steps past the last step): the memorised adapter is the job's
# best and last. eval_loss / eval_acc are measured on the held-out formulas every 100 steps.
TRAIN_ARGS=(--dataset "$DATA/train.jsonl" --val_dataset "$DATA/validation.jsonl"
  --num_train_epochs "$EPOCHS" --learning_rate "$LR" --lr_scheduler_type cosine
  --lora_rank 64 --lora_alpha 128 --lora_dropout 0 --target_modules ALL --weight_decay 0
  --batch_size 1 --gradient_accumulation_steps 1 --min_pixels 12544 --max_pixels 12544
  --eval_steps 100 --save_steps 1000000 --logging_steps 10 --gradient_checkpointing false
  --gpus 0)
printf '$ vlmctl sft --name latex-ocr --model $DEMO/model %s --json\n' \
  "$(echo "${TRAIN_ARGS[*]}" | sed "s#$DEMO_DIR#\$DEMO#g")"
JOB_JSON=$("$VLMCTL" --addr "$ADDR" sft --name latex-ocr --model "$DEMO_DIR/model" \
  "${TRAIN_ARGS[@]}" --json)
JOB_ID=$(echo "$JOB_JSON" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id") or d["job"]["id"])')
echo "  job $JOB_ID submitted (VALIDATING checks every line and image, then QUEUED, RUNNING)"
printf '$ vlmctl status %s --watch\n' "$JOB_ID"
"$VLMCTL" --addr "$ADDR" --timeout 0 status "$JOB_ID" --watch
JOB_DIR=$("$VLMCTL" --addr "$ADDR" status "$JOB_ID" --json |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("job_dir") or d["job"]["job_dir"])')

step "Evaluation during training (teacher-forced eval_loss / eval_acc on validation.jsonl)"
run "$VLMCTL" --addr "$ADDR" status "$JOB_ID"
echo "  from $JOB_DIR/logging.jsonl:"
python3 scripts/demo_summary.py "$JOB_DIR"

step "Merge the adapter into the base model"
run "$VLMCTL" --addr "$ADDR" merge --job "$JOB_ID" --checkpoint best \
  --out "$DEMO_DIR/merged" --register tiny-latex

step "Serve the merged model and the job's adapter"
echo "  the succeeded job's best adapter is served under the job's name (latex-ocr), and the"
echo "  merge registered the merged model as tiny-latex: no restart"
run "$VLMCTL" --addr "$ADDR" models
run "$VLMCTL" --addr "$ADDR" adapters list

step "Ask again on the same training image"
echo "  image: ${IMAGE#$DEMO_DIR/}   formula: $EXPECTED"
ask "base model:"
ask "base + adapter:" --adapter latex-ocr
ask "merged model:" --model tiny-latex

step "Evaluate the fine-tuned adapter (training formulas, then the held-out validation split)"
run "$VLMCTL" --addr "$ADDR" --timeout 0 eval --adapter latex-ocr --dataset "$DATA/train.jsonl" \
  --max-new-tokens 32 -v
run "$VLMCTL" --addr "$ADDR" --timeout 0 eval --job "$JOB_ID" --checkpoint best \
  --max-new-tokens 32 -v
echo "  The tiny model starts from random weights: it memorises the training formulas; the"
echo "  validation formulas were never shown to it, so expect little there. (BLEU-4 counts"
echo "  space-separated tokens: these compact formulas have fewer than 4, so it is 0 even for"
echo "  exact matches; see docs/evaluation.md.)"

step "Where the results are; stop the server"
echo "  job directory:     $JOB_DIR"
echo "  TensorBoard logs:  $JOB_DIR/runs        (tensorboard --logdir $JOB_DIR/runs)"
echo "  plots:             $(ls "$JOB_DIR"/images/*.png 2>/dev/null | tr '\n' ' ')"
echo "  training log:      $JOB_DIR/logging.jsonl"
echo "  checkpoints:       $(ls -d "$JOB_DIR"/checkpoint-* | tr '\n' ' ')"
echo "  evaluations:       $(ls -d "$DEMO_DIR"/state/evals/* "$JOB_DIR"/evals/* 2>/dev/null | tr '\n' ' ')"
echo "                     (results.jsonl: one line per sample; summary.json)"
echo "  merged model:      $DEMO_DIR/merged"
echo "  server log:        $DEMO_DIR/vlmd.log"
echo "  metrics:           http://$METRICS/metrics, e.g.:"
curl -s "http://$METRICS/metrics" | grep -E '^vlmd_(requests_total|generation_tokens_total|adapters_loaded)' \
  | sed 's/^/    /' || true
printf '$ kill -TERM %s\n' "$SERVER_PID"
code=0
stop_server || code=$?
echo "  vlmd exited with code $code"
T_END=$(date +%s)
echo
bold "Demo done in $((T_END - T_START))s ($((T_END - T_BUILT))s after the build)."
exit $code
