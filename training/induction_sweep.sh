#!/usr/bin/env bash
# One device call: when does an induction head form? Trains 8 small configurations side by side on one GPU on
# random-token repeat documents only (train.py --repeat-frac 1) and prints, per configuration, the first step at
# which the repeat answer accuracy reaches 0.9 (or "never"). Configurations cover the open questions of
# docs/accuracy.md: GPU flex_attention vs dense SDPA (same model), depth at 128 wide (2/4 layers), the 8 x 384
# model at three learning rates, and 6 and 4 layers x 384.
#   bash training/induction_sweep.sh [SECONDS]        # default 240; results also in $OUT/induction_sweep.json
#   DEVICE_ARGS="--device cpu --no-compile --seq 256 --rows 2 --workers 1" bash training/induction_sweep.sh 15  # CPU smoke test
set -u
S=${1:-240}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
W=/tmp/sweep; mkdir -p $W
COMMON="--repeat-frac 1 --repeat-until 2 --seq 4096 --rows 8 --min-len 64 --curriculum= --workers 2 --time-budget $S ${DEVICE_ARGS:-}"
run() {  # name, extra train.py arguments
  python3 training/train.py --out $W/$1 $COMMON ${@:2} > $W/$1.log 2>&1 &
}
run l2d128_flex   --layers 2 --dim 128
run l2d128_dense  --layers 2 --dim 128 --attention dense
run l4d128_flex   --layers 4 --dim 128
run l4d384_lr2e-3 --layers 4 --dim 384
run l8d384_lr2e-3 --layers 8 --dim 384
run l8d384_lr1e-3 --layers 8 --dim 384 --lr 1e-3
run l8d384_lr5e-3 --layers 8 --dim 384 --lr 5e-3
run l6d384_lr2e-3 --layers 6 --dim 384
wait
python3 - "$W" "${OUT:-/tmp}" <<'EOF'
import json, os, sys
w, out = sys.argv[1], sys.argv[2]
res = {}
for name in sorted(os.listdir(w)):
    log = os.path.join(w, name, "loss_log.jsonl")
    if not os.path.exists(log):
        continue
    recs = [json.loads(x) for x in open(log)]
    hit = next((r["step"] for r in recs if r["ans_acc_by_kind"].get("repeat", 0) >= 0.9), None)
    last = recs[-1]
    res[name] = {"first_step_repeat_acc_0.9": hit, "steps": last["step"], "last_repeat_acc":
                 last["ans_acc_by_kind"].get("repeat"), "tok_per_s": last["tok_per_s"]}
    print(f"{name:16s} repeat>=0.9 at step {hit if hit else 'never':>6}  (of {last['step']}, last acc "
          f"{last['ans_acc_by_kind'].get('repeat')}, {last['tok_per_s']} tok/s)")
json.dump(res, open(os.path.join(out, "induction_sweep.json"), "w"), indent=1)
EOF
tar -C $W -cf ${OUT:-/tmp}/induction_sweep_logs.tar --exclude='*.safetensors' --exclude='hf' .
