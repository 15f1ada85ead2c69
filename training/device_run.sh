#!/usr/bin/env bash
# One device call (one H200, <= 10 minutes): train one or more variants side by side, save their weights
# under $OUT right away (a time-out later loses nothing), evaluate them (global vs Star, 2K-16K) and export
# the Hugging Face reference logits.
#   [VARIANTS="global:0.0 mixed:0.5:DIR"] [TRAIN_EXTRA="..."] bash training/device_run.sh TRAIN_S EVAL_N [EVAL_LIMIT]
# VARIANTS: name:star_p[:init_dir]; with init_dir the variant starts from those weights (a fine-tuning stage).
# The calls that made the shipped model are listed in models/starflink-synth-14m/README.md.
set -u
TRAIN_S=${1:-420}; EVAL_N=${2:-30}; EVAL_LIMIT=${3:-90}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TORCHINDUCTOR_COMPILE_THREADS=6
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv,noheader; nproc
TOKDIR=models/starflink-synth-14m
W=/tmp/work; mkdir -p $W
DEADLINE=$(( T0 + TRAIN_S ))
VARIANTS=${VARIANTS:-"global:0.0"}
NAMES=""
for v in $VARIANTS; do NAMES="$NAMES ${v%%:*}"; done
NV=$(echo $NAMES | wc -w); WORKERS=$(( 14 / NV ))
for v in $VARIANTS; do
  IFS=: read -r name p init <<< "$v"
  INIT_ARG=""; [ -n "$init" ] && INIT_ARG="--init $init"
  python3 training/train.py --out $W/$name --star-p $p --deadline $DEADLINE --workers $WORKERS --rows 4 \
      --seq 16896 $INIT_ARG ${TRAIN_EXTRA:-} > $W/train_$name.log 2>&1 &
done
wait
for name in $NAMES; do grep -v -i -e warn -e create_block_mask $W/train_$name.log | head -8; tail -n 2 $W/train_$name.log; done
for name in $NAMES; do
  cp $TOKDIR/tokenizer.json $TOKDIR/tokenizer_config.json $TOKDIR/special_tokens_map.json $W/$name/hf/
  for f in $W/$name/hf/model-0000*-of-*.safetensors; do cp "$f" "$OUT/${name}__$(basename $f)"; done
done
echo "train done at +$(( $(date +%s) - T0 ))s"
for name in $NAMES; do
  python3 training/evaluate.py --model $W/$name/hf --out $W/$name/eval.json --n $EVAL_N --procs 4 \
      --fixed-blocks 1024 --gen-check 1 --gen-len 8192 --time-limit $EVAL_LIMIT > $W/eval_$name.log 2>&1 &
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
  tar -C $W -cf $OUT/${name}_meta.tar $name/loss_log.jsonl $name/train_meta.json $name/eval.json \
      $name/hf_logits.json $name/hf/config.json $name/hf/model.safetensors.index.json train_$name.log eval_$name.log
done
ls -la $OUT
echo "all done at +$(( $(date +%s) - T0 ))s"
