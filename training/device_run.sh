#!/usr/bin/env bash
# One device call: train the global-only and the Star-mixed variants side by side on one H200, evaluate both
# (global vs Star, 2K-16K), export HF reference logits, and leave everything under $OUT (<= 8 files, 16 MB each).
#   [VARIANTS="global:0.0 mixed:0.5"] [TRAIN_EXTRA="--copy-frac 0.5 --copy-until 0.2"] \
#   bash training/device_run.sh TRAIN_SECONDS EVAL_N [EVAL_TIME_LIMIT]
# VARIANTS: name:star_p pairs trained side by side (one GPU). Runs of this session (see the model card):
#   run 1: VARIANTS default, --rows 8, no curriculum, TRAIN_S=380; run 2: the defaults below, TRAIN_S=290.
set -u
TRAIN_S=${1:-360}; EVAL_N=${2:-30}; EVAL_LIMIT=${3:-150}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TORCHINDUCTOR_COMPILE_THREADS=6
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv,noheader; nproc
TOKDIR=models/starflink-synth-14m
W=/tmp/work; mkdir -p $W
DEADLINE=$(( T0 + TRAIN_S ))
VARIANTS=${VARIANTS:-"global:0.0 mixed:0.5"}
NAMES=""
for v in $VARIANTS; do NAMES="$NAMES ${v%%:*}"; done
for v in $VARIANTS; do
  name=${v%%:*}; p=${v##*:}
  python3 training/train.py --out $W/$name --star-p $p --deadline $DEADLINE --workers 6 --rows 4 --curriculum 0.35:2048,0.5:4096,0.65:8192 ${TRAIN_EXTRA:-} \
      > $W/train_$name.log 2>&1 &
done
wait
for name in $NAMES; do grep -v -i -e warn -e create_block_mask $W/train_$name.log | head -12; tail -n 3 $W/train_$name.log; done
for name in $NAMES; do
  cp $TOKDIR/tokenizer.json $TOKDIR/tokenizer_config.json $TOKDIR/special_tokens_map.json $W/$name/hf/
done
echo "train done at +$(( $(date +%s) - T0 ))s"
for name in $NAMES; do
  python3 training/evaluate.py --model $W/$name/hf --out $W/$name/eval.json --n $EVAL_N --procs 7 \
      --fixed-blocks 1024 --gen-check 2 --gen-len 8192 --time-limit $EVAL_LIMIT > $W/eval_$name.log 2>&1 &
done
wait
for name in $NAMES; do grep -v -i warn $W/eval_$name.log; done
echo "eval done at +$(( $(date +%s) - T0 ))s"
for name in $NAMES; do
  python3 training/hf_export.py --model $W/$name/hf --out $W/$name/hf_logits.json > $W/hf_$name.log 2>&1 &
done
wait
for name in $NAMES; do grep -v -i -e warn -e Loading $W/hf_$name.log; done
for name in $NAMES; do
  [ -z "${SMOKE:-}" ] && cp $W/$name/hf/model-0000*.safetensors $OUT/ 2>/dev/null
  for f in $OUT/model-0000*-of-*.safetensors; do [ -e "$f" ] && mv "$f" "$OUT/${name}__$(basename $f)"; done
  tar -C $W -cf $OUT/${name}_meta.tar $name/loss_log.jsonl $name/train_meta.json $name/eval.json \
      $name/hf_logits.json $name/hf/config.json $name/hf/model.safetensors.index.json train_$name.log eval_$name.log
done
ls -la $OUT
echo "all done at +$(( $(date +%s) - T0 ))s"
