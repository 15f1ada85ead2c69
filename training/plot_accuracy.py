"""Charts for docs/accuracy.md.

    python3 training/plot_accuracy.py [--model-dir models/starflink-synth-14m] [--out docs/figures]

Prints the accuracy tables of docs/accuracy.md, writes eval-synth-14m.csv (the `starflink eval` runs pooled per
cell) and three figures:
  accuracy_vs_length.png   exact match vs context length, per task and attention mode: the `starflink eval`
                           runs of the shipped model (docs/figures/eval-synth-14m/*.json, Java engine) with the
                           PyTorch evaluation of the same weights on the GPU (runs/s3_call3_cont_eval.json)
  training_curves.png      answer-token accuracy per document kind over training: stage 1 trained with the
                           global mask and with the Star mask on half the documents, then stage 2
  induction_diagnosis.png  when the random-token repeat task is learned (the induction head forms): the GPU runs
                           that never formed one, the CPU checks and the GPU sweep that did
"""
import argparse
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TASKS = ["niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "cwe", "qa"]
# mode: (label, colour, marker); Java names first, the PyTorch evaluation's names map onto them
MODES = {"global": ("global", "tab:blue", "o"), "star-N/4": ("Star, block = N/4", "tab:orange", "s"),
         "star-1024": ("Star, block = 1024", "tab:green", "^")}
PYTORCH_MODES = {"global": "global", "star_quarter": "star-N/4", "star_b1024": "star-1024"}


def pool_java(paths):
    """`starflink eval --json` rows of several runs, one row per (task, length, mode) cell: runs that cover other
    instances of a cell (--first-sample) are pooled, every rate weighted by its sample count."""
    cells = {}
    for path in paths:
        for row in json.load(open(path)):
            cell = cells.setdefault((row["task"], row["length"], row["mode"]), dict(row, samples=0))
            n = cell["samples"] + row["samples"]
            for f in ("accuracy", "top1_agreement", "mean_abs_logit_diff"):
                cell[f] = (cell[f] * cell["samples"] + row[f] * row["samples"]) / n
            cell["samples"] = n
    return sorted(cells.values(), key=lambda r: (TASKS.index(r["task"]), r["length"]))  # stable: modes keep order


def write_csv(rows, path):
    """The same columns as `starflink eval --csv`."""
    acc = {(r["task"], r["length"], r["mode"]): r["accuracy"] for r in rows}
    lines = ["task,length,mode,samples,accuracy,star_over_global,top1_agreement,mean_abs_logit_diff"]
    for r in rows:
        g = acc[(r["task"], r["length"], "global")]
        ratio = "-" if r["mode"] == "global" or g == 0 else f"{r['accuracy'] / g:.2f}"
        lines.append(f"{r['task']},{r['length']},{r['mode']},{r['samples']},{r['accuracy']:.4f},{ratio},"
                     f"{r['top1_agreement']:.4f},{r['mean_abs_logit_diff']:.6f}")
    open(path, "w").write("\n".join(lines) + "\n")


def load_java(rows):
    """{mode: {task: {length: (accuracy, samples)}}} from pooled `starflink eval` rows."""
    table = {}
    for row in rows:
        table.setdefault(row["mode"], {}).setdefault(row["task"], {})[row["length"]] = (row["accuracy"], row["samples"])
    return table


def load_pytorch(path):
    """The same shape from a training/evaluate.py JSON file."""
    ev = json.load(open(path))
    return {PYTORCH_MODES[m]: {task: {int(T): (c["em"], c["n"]) for T, c in cells.items()}
                               for task, cells in ev["table"][m].items()}
            for m in ev["modes"]}


def plot_accuracy_vs_length(java, pytorch, out):
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), sharey=True)
    for ax, task in zip(axes.flat, TASKS + ["mean"]):
        for source, table, ls, lw, alpha in (("starflink eval", java, "-", 1.8, 1.0),
                                             ("PyTorch, GPU", pytorch, ":", 1.0, 0.7)):
            for mode, (label, color, marker) in MODES.items():
                if mode not in table:
                    continue
                tasks = TASKS if task == "mean" else [task]
                lengths = sorted(set.intersection(*(set(table[mode].get(t, {})) for t in tasks)))
                if not lengths:
                    continue
                ys = [100 * sum(table[mode][t][T][0] for t in tasks) / len(tasks) for T in lengths]
                ax.plot(lengths, ys, ls=ls, lw=lw, alpha=alpha, marker=marker, ms=5 if ls == "-" else 3,
                        color=color, label=f"{label} ({source})")
        ax.set_title(task)
        ax.set_xscale("log", base=2)
        ax.set_xticks([2048, 4096, 8192, 16384])
        ax.set_xticklabels(["2K", "4K", "8K", "16K"])
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("exact match (%)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9)
    n_java = sorted({n for m in java.values() for c in m.values() for _, n in c.values()})
    n_torch = sorted({n for m in pytorch.values() for c in m.values() for _, n in c.values()})
    fig.suptitle(f"starflink-synth-14m: exact match vs context length (starflink eval: {n_java[0]}-{n_java[-1]} "
                 f"instances per point; PyTorch on the GPU: {n_torch[0]}-{n_torch[-1]})")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    fig.savefig(os.path.join(out, "accuracy_vs_length.png"), dpi=110)
    plt.close(fig)


# (log file under runs/, line style, continues stage 1): the shipped model's two stages (stage 2 continues stage
# 1's step numbering) and the stage-1 variant trained with the Star mask on half the documents (dotted)
STAGES = [("s3_call2_global_loss_log.jsonl", "-", False), ("s3_call2_mixed_loss_log.jsonl", ":", False),
          ("s3_call3_cont_loss_log.jsonl", "-", True)]
KIND_COLORS = dict(zip(TASKS + ["recall", "repeat"], plt.get_cmap("tab10").colors))


def plot_training_curves(model_dir, out):
    """Answer-token accuracy per document kind on the training batches, over both stages."""
    logs = [[json.loads(x) for x in open(os.path.join(model_dir, "runs", name))] for name, _, _ in STAGES]
    stage1_steps = logs[0][-1]["step"]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    for i, ((_, ls, continues), recs) in enumerate(zip(STAGES, logs)):
        first_step = stage1_steps if continues else 0
        for kind in TASKS + ["recall", "repeat"]:
            pts = [(first_step + r["step"], r["ans_acc_by_kind"][kind]) for r in recs if kind in r["ans_acc_by_kind"]]
            if len(pts) > 3:
                ax.plot(*zip(*pts), ls=ls, lw=1.0, color=KIND_COLORS[kind], label=kind if i == 0 else None)
    ax.axvline(stage1_steps, color="gray", lw=0.8)
    ax.text(stage1_steps, 0.02, " stage 2 starts", fontsize=8, color="gray")
    ax.set_xlabel("step (stage 2 continues the numbering of stage 1; dotted: stage 1 with the Star mask on 50%)")
    ax.set_ylabel("answer-token accuracy on the training batch")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3, loc="center right")
    ax.set_title("starflink-synth-14m training: repeats alone until induction forms (gate), then every task")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "training_curves.png"), dpi=110)
    plt.close(fig)


# (log file under runs/, document kind, label, colour, line style)
DIAGNOSIS = [
    ("s2_call1_global_loss_log.jsonl", "recall", "session 2, GPU call 1: dense recall (8 x 384, in a mix)", "tab:gray", ":"),
    ("s2_call2_global_loss_log.jsonl", "assoc", "session 2, GPU call 2: random-token assoc (in a mix)", "tab:orange", "-"),
    ("s2_call3_global_loss_log.jsonl", "repeat", "session 2, GPU call 3: repeat, 30% of the mix (8 x 384)", "tab:red", "-"),
    ("s2_cpu_repeat_2x128_loss_log.jsonl", "repeat", "CPU: repeat only (2 x 128, dense mask)", "tab:blue", "-"),
    ("s2_cpu_repeat_8x128_loss_log.jsonl", "repeat", "CPU: repeat only (8 x 128, dense mask)", "tab:cyan", "-"),
    ("s2_cpu_mix_2x128_loss_log.jsonl", "repeat", "CPU: repeat in the GPU call 3 mix (2 x 128)", "tab:green", "-"),
    ("s3_sweep/l2d128_flex_loss_log.jsonl", "repeat", "GPU sweep: repeat only, 2 x 128, flex", "tab:purple", "--"),
    ("s3_sweep/l8d384_lr2e-3_loss_log.jsonl", "repeat", "GPU sweep: repeat only, 8 x 384, lr 2e-3", "black", "--"),
    ("s3_sweep/l8d384_lr1e-3_loss_log.jsonl", "repeat", "GPU sweep: repeat only, 8 x 384, lr 1e-3", "tab:brown", "--"),
    ("s3_sweep/l8d384_lr5e-3_loss_log.jsonl", "repeat", "GPU sweep: repeat only, 8 x 384, lr 5e-3", "tab:pink", "--"),
    ("s3_call2_global_loss_log.jsonl", "repeat", "shipped model, stage 1: gate (repeat only), then 10% of the mix", "black", "-"),
]


def plot_induction_diagnosis(model_dir, out):
    """Answer-token accuracy of the training-only retrieval documents over steps: GPU runs vs CPU checks."""
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for name, kind, label, color, ls in DIAGNOSIS:
        p = os.path.join(model_dir, "runs", name)
        pts = [(r["step"], r["ans_acc_by_kind"][kind]) for r in map(json.loads, open(p))
               if kind in r.get("ans_acc_by_kind", {})]
        ax.plot(*zip(*pts), color=color, ls=ls, label=label, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("step (log)")
    ax.set_ylabel("answer-token accuracy on the training batch")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    ax.set_title("Induction forms on repeat-only data (CPU and GPU alike) and not when repeats are diluted in a mix")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "induction_diagnosis.png"), dpi=110)
    plt.close(fig)


def markdown_table(table):
    """Rows = tasks (+ mean), columns = lengths, each cell "global / Star N/4 / Star 1024" exact match in %."""
    lengths = sorted({T for m in table.values() for c in m.values() for T in c})
    lines = ["| task | " + " | ".join(f"{T // 1024}K" for T in lengths) + " |",
             "|---|" + "---:|" * len(lengths)]
    for task in TASKS + ["mean"]:
        tasks = TASKS if task == "mean" else [task]
        cells = []
        for T in lengths:
            accs = [sum(table[m][t][T][0] for t in tasks) / len(tasks) * 100 for m in MODES]
            cells.append(" / ".join(f"{a:.0f}" for a in accs))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="models/starflink-synth-14m")
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = pool_java(sorted(glob.glob(os.path.join(args.out, "eval-synth-14m", "*.json"))))
    write_csv(rows, os.path.join(args.out, "eval-synth-14m.csv"))
    java = load_java(rows)
    pytorch = load_pytorch(os.path.join(args.model_dir, "runs", "s3_call3_cont_eval.json"))
    print("starflink eval (global / Star N/4 / Star 1024, %):\n" + markdown_table(java))
    print("PyTorch on the GPU:\n" + markdown_table(pytorch))
    plot_accuracy_vs_length(java, pytorch, args.out)
    plot_training_curves(args.model_dir, args.out)
    plot_induction_diagnosis(args.model_dir, args.out)
    print("wrote", *(os.path.join(args.out, f) for f in ("accuracy_vs_length.png", "training_curves.png",
                                                          "induction_diagnosis.png")))


if __name__ == "__main__":
    main()
