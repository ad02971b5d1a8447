"""The density sweep (issue 12): how the fraction of nonzeros in the constant ternary 1x1s trades accuracy
for cycles. The paper's axis is sparsity; the mixer spends one add per nonzero, so cycles grow with it.

    ternkws train --data data/synth2 --epochs 30 --teacher baseline --ema 0.998 --lr 0.01 \\
        --density 1/2 --seed 0 --out build/train/ema-d2-s0.npz       # one point (make train DENSITY=1/2 ...)
    python -m ternkws.sim.density build/train/ema-d*-s*.npz \\
        --recorded build/train/default-ema-lr1e-2-s0.npz               # make density
    python -m ternkws.sim.density --report                              # only rewrite from the JSON

Each checkpoint is evaluated on the test split of its own dataset (golden.evaluate: int8 and float,
per class), and its cycles come from hw.cycles (one window) and hw.streaming_cycles (one 10-ms frame
of the always-listening mode), the counts the RTL reproduces (reports/rtl_checkpoints.md simulates the
checkpoints). `--recorded FILE` takes a checkpoint that is no longer on disk from
reports/rtl_checkpoints.json (its int8 test accuracy only). Rows are kept in reports/density.json by
file (a row is replaced when its file is evaluated again), so the sweep can grow a seed at a time.
Writes reports/density.{json,md,png}: per density every seed, the mean, unknown and keyword accuracy,
cycles; the PNG plots accuracy and cycles against the density.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _cycles(model):
    """Cycles of one window (UP5K, ECP5) and of one streaming frame (UP5K); None where the configuration
    does not fit the model (its lanes do not divide a channel count)."""
    from ternkws.hw.accelerator import CONFIGS
    from ternkws.hw.cycles import cycles_per_window
    from ternkws.hw.streaming_cycles import stream_cycles

    def fit(f):
        try:
            return int(f())
        except ValueError:
            return None
    return {"window_up5k": fit(lambda: cycles_per_window(model, CONFIGS["up5k"])),
            "window_ecp5": fit(lambda: cycles_per_window(model, CONFIGS["ecp5"])),
            "stream_frame_up5k": fit(lambda: stream_cycles(model, CONFIGS["up5k"])["frame"])}


def _count(n):
    return "-" if n is None else f"{n:,}"


def _recipe(meta):
    """Training facts of a row: data, epochs, teacher, augmentation, EMA (what decides whether two rows are
    comparable), the training seed and the peak lr."""
    from .checkpoints import _meta_facts
    facts = _meta_facts(meta)
    cfg = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else {}
    return {k: facts[k] for k in ("dataset", "epochs", "teacher", "augment", "ema", "seed")} | {"lr": cfg.get("lr")}


def evaluate_row(path, jobs=None, log=print):
    """A row from a checkpoint on disk: its density, seed, recipe, accuracies on its test split, cycles."""
    from ternkws.golden.checkpoint import load
    from ternkws.golden.errors import UserError
    from ternkws.golden.evaluate import evaluate
    from ternkws.golden.labels import KEYWORDS

    model = load(path)
    if model.topology.mixer != "ternary":
        raise UserError(f"{path}: a density sweep point must have ternary 1x1s, not {model.topology.mixer}")
    data = model.meta.get("dataset")
    if not data or not Path(data, "manifest.csv").is_file():
        raise UserError(f"{path}: its dataset {data!r} is not here; build it with `ternkws dataset` first")
    t0 = time.time()
    r = evaluate(model, data, "test", jobs=jobs, progress=False)
    per = r["per_class"]
    row = {"file": str(path), "model_id": model.model_id, "topology": model.topology.name,
           "pattern": model.topology.pattern, "density": model.topology.density,
           **_recipe(model.meta),
           "trained_parameters": model.meta.get("trained_parameters"),
           "train_minutes": (round(model.meta["train_seconds"] / 60, 1)
                             if model.meta.get("train_seconds") is not None else None),
           "int8_test": r["accuracy_int8"], "float_test": r["accuracy_float"],
           "float_val": model.meta.get("float_val_accuracy"),
           "unknown_int8": per["unknown"]["accuracy_int8"],
           "keywords_int8": float(np.mean([per[k]["accuracy_int8"] for k in KEYWORDS])),
           **_cycles(model), "source": "evaluated"}
    log(f"{path}: density {row['density']:.4g}, seed {row['seed']}: int8 {100 * row['int8_test']:.2f}%, "
        f"unknown {100 * row['unknown_int8']:.1f}%, {_count(row['window_up5k'])} UP5K cycles a window "
        f"({time.time() - t0:.0f} s)")
    return row


def recorded_row(file, rtl_json="reports/rtl_checkpoints.json"):
    """A row for a checkpoint no longer on disk, from its record in reports/rtl_checkpoints.json."""
    import dataclasses

    from ternkws.golden.checkpoint import load
    from ternkws.golden.errors import UserError
    rows = [r for r in json.loads(Path(rtl_json).read_text())["checkpoints"] if r["file"] == file]
    if not rows:
        raise UserError(f"--recorded {file}: no row of that file in {rtl_json}")
    r = rows[0]
    if r["mixer"] != "ternary" or r["topology"] != "3x1x64":
        raise UserError(f"--recorded {file}: only ternary 3x1x64 records are supported, not {r['mixer']} {r['topology']}")
    density = r.get("density") or 1 / 3
    base = load("default")                   # the cycles depend on the topology only: the default's, re-densified
    model = dataclasses.replace(base, topology=dataclasses.replace(base.topology, pattern=r["pattern"], density=density))
    return {"file": file, "model_id": r["model_id"], "topology": r["topology"], "pattern": r["pattern"],
            "density": density, "seed": r.get("seed"), "dataset": r.get("dataset"), "epochs": r.get("epochs"),
            "teacher": r.get("teacher"), "augment": r.get("augment"), "ema": r.get("ema"), "lr": None,
            "trained_parameters": None, "train_minutes": None, "int8_test": r["int8_test_accuracy"], "float_test": None, "float_val": None,
            "unknown_int8": None, "keywords_int8": None, **_cycles(model), "source": "recorded"}


SAME = ("dataset", "epochs", "augment", "ema")     # what every point of one sweep shares (recorded rows lack the lr)


def check_comparable(rows, row):
    """A sweep varies the density only: a point trained on other data, epochs or weight average is refused."""
    from ternkws.golden.errors import UserError
    for r in rows:
        differ = [k for k in SAME if r.get(k) != row.get(k)]
        if differ or r["topology"] != row["topology"]:
            theirs = ", ".join(f"{k} {r.get(k)}" for k in differ or ["topology"])
            mine = ", ".join(f"{k} {row.get(k)}" for k in differ or ["topology"])
            raise UserError(f"{row['file']} ({mine}) is not comparable with {r['file']} ({theirs}): a sweep varies "
                            "the density only (use another --reports folder for another recipe)")


def table(rows):
    """Per density (ascending): its rows by seed, the mean and spread of int8 test accuracy."""
    out = []
    for d in sorted({r["density"] for r in rows}):
        pts = sorted((r for r in rows if r["density"] == d), key=lambda r: (r["seed"] is None, r["seed"]))
        acc = [r["int8_test"] for r in pts]
        known = [r["unknown_int8"] for r in pts if r["unknown_int8"] is not None]
        val = [r["float_val"] for r in pts if r.get("float_val") is not None]
        out.append({"density": d, "rows": pts, "n": len(pts), "mean": float(np.mean(acc)),
                    "min": min(acc), "max": max(acc),
                    "unknown_mean": float(np.mean(known)) if known else None,
                    "val_mean": float(np.mean(val)) if val else None, "val_n": len(val),
                    "window_up5k": pts[0]["window_up5k"], "window_ecp5": pts[0]["window_ecp5"],
                    "stream_frame_up5k": pts[0]["stream_frame_up5k"]})
    return out


def _pct(x, digits=2):
    return "-" if x is None else f"{100 * x:.{digits}f}"


def markdown(rows):
    from ternkws.golden.topology import density_name
    t = table(rows)
    first = next((r for r in rows if r["source"] == "evaluated"), rows[0])
    ref = next((p for p in t if abs(p["density"] - 1 / 3) < 1e-9), None)
    lines = ["# Density of the ternary 1x1s: accuracy against cycles", "",
             "<!-- generated by python -m ternkws.sim.density (make density) -->",
             "The fraction of nonzero entries in every constant ternary 1x1 (grouped pattern: one nonzero per "
             f"group of M inputs, density 1/M), the rest of the model and recipe the same: ternary {first['topology']}"
             + (f", {first['trained_parameters']:,} trained parameters" if first.get("trained_parameters") else "")
             + f" (the density changes no trained parameter); {first['dataset']}, {first['epochs']} epochs, "
             f"{first.get('augment')} augmentation" + (f", weight average --ema {first['ema']:g}" if first.get("ema") else "")
             + (f", distilled from {first['teacher']}" if first.get("teacher") else "") + ". "
             "Accuracy: int8, speaker-held-out test split (on data/synth2 2,004 clips: 1 point = 20 clips). "
             "Cycles: UP5K configuration (8 rows a cycle) for one 1.28-s window and for one 10-ms frame of "
             "the always-listening mode (target <= 4,000), ECP5 configuration for one window "
             "(hw/cycles.py, hw/streaming_cycles.py: the RTL's counts).", "",
             "| density | seeds | int8 test % (each seed) | mean | spread | float val % (mean) | unknown % (mean) "
             "| UP5K cycles a window | UP5K cycles a 10-ms frame | ECP5 cycles a window |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in t:
        each = ", ".join(f"{_pct(r['int8_test'])}" + ("*" if r["source"] == "recorded" else "") for r in p["rows"])
        lines.append(f"| {density_name(p['density'])} | {p['n']} | {each} | **{_pct(p['mean'])}** | "
                     f"{100 * (p['max'] - p['min']):.2f} | {_pct(p['val_mean'])} | {_pct(p['unknown_mean'], 1)} | "
                     f"{_count(p['window_up5k'])} | "
                     f"{_count(p['stream_frame_up5k'])} | {_count(p['window_ecp5'])} |")
    lines += ["", "\\* recorded in reports/rtl_checkpoints.json (the checkpoint is no longer on disk: int8 test "
              "accuracy only).", ""]
    if ref is not None and len(t) > 1:
        lines += ["Against density 1/3 (the bundled models' density), mean int8 accuracy and cycles:", ""]
        for p in t:
            if p is not ref:
                ratios = "".join(f", {what} x{p[k] / ref[k]:.2f}" for k, what in
                                 (("window_up5k", "UP5K window cycles"), ("stream_frame_up5k", "stream frame"))
                                 if p[k] and ref[k])
                lines.append(f"- {density_name(p['density'])}: {100 * (p['mean'] - ref['mean']):+.2f} points "
                             f"over {p['n']} seed(s){ratios}")
        lines.append("")
    lines += ["## Every point", "",
              "| checkpoint | model id | density | seed | recipe | int8 test % | float test % | float val % | "
              "unknown % | keywords % (mean) | training |",
              "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for p in t:
        for r in p["rows"]:
            recipe = f"{r['dataset']}, {r['epochs']} ep, {r.get('augment')} aug" + (f", EMA {r['ema']:g}" if r.get("ema") else "") + \
                (f", lr {r['lr']:g}" if r.get("lr") else "") + (f" (teacher {r['teacher']})" if r.get("teacher") else "")
            minutes = "-" if r["train_minutes"] is None else f"{r['train_minutes']:.0f} min"
            lines.append(f"| `{r['file']}` | {r['model_id']} | {density_name(r['density'])} | {r['seed']} | {recipe} | "
                         f"{_pct(r['int8_test'])} | {_pct(r['float_test'])} | {_pct(r['float_val'])} | "
                         f"{_pct(r['unknown_int8'], 1)} | {_pct(r['keywords_int8'], 1)} | {minutes} |")
    lines += ["", "![accuracy and cycles against density](density.png)", ""]
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ternkws.golden.topology import density_name
    t = table(rows)
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for p in t:
        ax.plot([p["density"]] * p["n"], [100 * r["int8_test"] for r in p["rows"]], "o", color="C1", alpha=0.45,
                mfc="none")
    ax.plot([p["density"] for p in t], [100 * p["mean"] for p in t], "s-", color="C1", label="int8 test, mean of seeds")
    ax.set_xscale("log")
    ax.set_xticks([p["density"] for p in t], [density_name(p["density"]) for p in t])
    ax.minorticks_off()
    ax.set_xlabel("density of the ternary 1x1s (nonzeros per entry)")
    ax.set_ylabel("int8 test accuracy, speaker-held-out (%)", color="C1")
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    cyc = [p for p in t if p["window_up5k"]]
    ax2.plot([p["density"] for p in cyc], [p["window_up5k"] / 1e3 for p in cyc], "^--", color="C0",
             label="UP5K cycles a window (k)")
    ax2.set_ylabel("UP5K cycles a window (thousands)", color="C0")
    ax2.set_ylim(bottom=0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower right")
    ax.set_title("Ternary 3x1x64: density against accuracy (circles: one seed) and cycles", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(rows, reports):
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "density.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d"), "points": rows, "table": [{k: v for k, v in p.items() if k != "rows"}
                                                                      for p in table(rows)]}, indent=1) + "\n")
    (reports / "density.md").write_text(markdown(rows))
    plot(rows, reports / "density.png")


def main(argv=None):
    from ternkws.golden.errors import UserError
    p = argparse.ArgumentParser(prog="python -m ternkws.sim.density", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help="ternary checkpoints of the sweep (.npz), evaluated on their test split")
    p.add_argument("--recorded", nargs="+", default=[], metavar="FILE",
                   help="checkpoints no longer on disk, by their record in reports/rtl_checkpoints.json")
    p.add_argument("--report", action="store_true", help="only rewrite the reports from reports/density.json")
    p.add_argument("--reports", default="reports", help="where density.{json,md,png} go (default reports)")
    p.add_argument("--jobs", type=int, default=None, help="evaluation processes (default: the CPUs)")
    a = p.parse_args(argv)
    out = Path(a.reports) / "density.json"
    rows = json.loads(out.read_text())["points"] if out.is_file() else []
    if not (a.models or a.recorded or a.report):
        p.error("give checkpoints, --recorded FILE or --report")
    try:
        for item in [("rec", f) for f in a.recorded] + [("eval", m) for m in a.models]:
            row = recorded_row(item[1]) if item[0] == "rec" else evaluate_row(item[1], jobs=a.jobs)
            rows = [r for r in rows if r["file"] != row["file"]]
            check_comparable(rows, row)
            rows.append(row)
            write_reports(rows, a.reports)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        p.error(f"no points: {out} holds none")
    write_reports(rows, a.reports)
    print(f"wrote {a.reports}/density.{{json,md,png}}: {len(rows)} points at "
          f"{len({r['density'] for r in rows})} densities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
