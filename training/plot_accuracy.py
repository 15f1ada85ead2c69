"""Charts for docs/accuracy.md: exact match vs context length per task and attention mode, and the loss curves.

    python3 training/plot_accuracy.py [--model-dir models/starflink-synth-14m] [--out docs/figures]

Reads runs/run2_{global,mixed}_eval.json and runs/run*_loss_log.jsonl under the model directory and writes
accuracy_vs_length.png and loss_curves.png.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODES = {"global": ("global", "-", "o"), "star_quarter": ("Star, block = N/4", "--", "s"),
         "star_b1024": ("Star, block = 1024", ":", "^")}
TRAINED = {"global": ("trained global-only", "tab:blue"), "mixed": ("trained 50% Star mask", "tab:orange")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="models/starflink-synth-14m")
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--run", default="run2")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    evals = {}
    for v in TRAINED:
        p = os.path.join(args.model_dir, "runs", f"{args.run}_{v}_eval.json")
        if os.path.exists(p):
            evals[v] = json.load(open(p))
    kinds = None
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), sharey=True)
    for v, ev in evals.items():
        lengths = ev["lengths"]
        kinds = list(next(iter(ev["table"].values())).keys())
        for ax, kind in zip(axes.flat, kinds + ["mean"]):
            for mode, (mlabel, ls, mk) in MODES.items():
                if mode not in ev["table"]:
                    continue
                if kind == "mean":
                    ys = [ev["mean_over_tasks"][mode].get(str(T), float("nan")) * 100 for T in lengths]
                else:
                    ys = [ev["table"][mode][kind].get(str(T), {}).get("em", float("nan")) * 100 for T in lengths]
                ax.plot(lengths, ys, ls=ls, marker=mk, color=TRAINED[v][1], label=f"{TRAINED[v][0]}, {mlabel}")
            ax.set_title(kind)
            ax.set_xscale("log", base=2)
            ax.set_xticks(lengths)
            ax.set_xticklabels([f"{T // 1024}K" for T in lengths])
            ax.set_ylim(-5, 105)
            ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("exact match (%)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9)
    n = min(min(c["n"] for k in ev["table"].values() for r in k.values() for c in r.values()) for ev in evals.values())
    fig.suptitle(f"starflink-synth-14m ({args.run}): exact match vs context length (n >= {n} per point; "
                 "see docs/accuracy.md)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(os.path.join(args.out, "accuracy_vs_length.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for run, ax in zip(("run1", "run2"), axes):
        for v in TRAINED:
            p = os.path.join(args.model_dir, "runs", f"{run}_{v}_loss_log.jsonl")
            if not os.path.exists(p):
                continue
            recs = [json.loads(x) for x in open(p)]
            steps = [r["step"] for r in recs]
            ax.plot(steps, [r["ans_loss"] for r in recs], color=TRAINED[v][1], label=f"{TRAINED[v][0]}: answer CE")
            ax.plot(steps, [r["aux_loss"] for r in recs], color=TRAINED[v][1], ls=":", label=f"{TRAINED[v][0]}: other-token CE")
        ax.axhline(2.302585, color="gray", lw=0.8, ls="--", label="ln 10 (a random digit)")
        ax.set_title(f"{run}: training loss")
        ax.set_xlabel("step")
        ax.set_ylim(0, 6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "loss_curves.png"), dpi=110)
    plot_induction_diagnosis(args.model_dir, args.out)
    print("wrote", os.path.join(args.out, "accuracy_vs_length.png"), os.path.join(args.out, "loss_curves.png"),
          os.path.join(args.out, "induction_diagnosis.png"))


# (log file under runs/, document kind, label, colour, line style): the retrieval signals of session 2
DIAGNOSIS = [
    ("s2_call1_global_loss_log.jsonl", "copy", "GPU call 1: digit copy (8 x 384)", "tab:gray", "-"),
    ("s2_call1_global_loss_log.jsonl", "recall", "GPU call 1: dense recall", "tab:gray", ":"),
    ("s2_call2_global_loss_log.jsonl", "assoc", "GPU call 2: random-token assoc", "tab:orange", "-"),
    ("s2_call2_global_loss_log.jsonl", "recall", "GPU call 2: dense recall", "tab:orange", ":"),
    ("s2_call3_global_loss_log.jsonl", "repeat", "GPU call 3: random-token repeat", "tab:red", "-"),
    ("s2_call3_global_loss_log.jsonl", "recall", "GPU call 3: dense recall", "tab:red", ":"),
    ("s2_cpu_repeat_2x128_loss_log.jsonl", "repeat", "CPU: random-token repeat (2 x 128, dense mask)", "tab:blue", "-"),
    ("s2_cpu_repeat_4x128_loss_log.jsonl", "repeat", "CPU: random-token repeat (4 x 128, dense mask)", "tab:purple", "-"),
    ("s2_cpu_repeat_8x128_loss_log.jsonl", "repeat", "CPU: random-token repeat (8 x 128, dense mask)", "tab:cyan", "-"),
    ("s2_cpu_mix_2x128_loss_log.jsonl", "repeat", "CPU: repeat in the GPU call 3 mix (2 x 128)", "tab:green", "-"),
    ("s2_cpu_gate_2x128_loss_log.jsonl", "repeat", "CPU, induction gate (2 x 128): repeat", "black", "-"),
    ("s2_cpu_gate_2x128_loss_log.jsonl", "recall", "CPU, induction gate (2 x 128): recall after the gate", "black", ":"),
    ("s2_cpu_gate_2x128_loss_log.jsonl", "niah_single", "CPU, induction gate (2 x 128): niah_single", "black", "--"),
    ("s2_cpu_gate_2x128_mixed_loss_log.jsonl", "repeat", "CPU, induction gate, 50% Star mask (2 x 128): repeat", "tab:olive", "-"),
]


def plot_induction_diagnosis(model_dir, out):
    """Answer-token accuracy of the training-only retrieval documents over steps: GPU runs vs CPU checks."""
    fig, ax = plt.subplots(figsize=(10, 5))
    for name, kind, label, color, ls in DIAGNOSIS:
        p = os.path.join(model_dir, "runs", name)
        if not os.path.exists(p):
            continue
        pts = [(r["step"], r["ans_acc_by_kind"][kind]) for r in map(json.loads, open(p))
               if kind in r.get("ans_acc_by_kind", {})]
        if pts:
            ax.plot(*zip(*pts), color=color, ls=ls, label=label, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("step (log)")
    ax.set_ylabel("answer-token accuracy on the training batch")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    ax.set_title("Induction forms only in 2-layer, repeat-only CPU runs; once it has, the retrieval tasks follow")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "induction_diagnosis.png"), dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
