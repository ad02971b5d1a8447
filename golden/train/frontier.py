"""The paper's claim as a frontier: int8 speaker-held-out accuracy against trained parameters, for the
learned-1x1 family and the LFSR-ternary family, same data, recipe, seed and epochs (issue 12).

    python -m ternkws.golden.train.frontier --data data/synth2 --epochs 10      # make frontier
    python -m ternkws.golden.train.frontier --epochs 30 --points learned-3x1x16,ternary-3x2x64
    python -m ternkws.golden.train.frontier --epochs 30 --augment light        # the recipe's other lever

Each point is an ordinary `ternkws train` run (golden/train/trainer.py) writing build/frontier/e<epochs>/
<family>-<BxRxC>.npz (e<epochs>-<augment>/ for an augmentation other than the default "full"); a point
whose checkpoint exists is not trained again, and an interrupted one resumes from its per-epoch state
(FILE.state.pt), so the command can be killed and re-run at any time,
and two processes can share the points (`--points`). After every point reports/frontier.{json,md,png}
are rewritten from the checkpoints' meta (topology, trained parameters, accuracy, epochs, wall time) of
every training run (length, augmentation) found under build/frontier/ (one table each; the plot draws
the shorter ones faded); `--report` only rewrites them.

Does the ternary frontier lie at or above the learned one at equal trained parameters? The report
compares each ternary point with the learned frontier interpolated (linearly in log parameters) at the
same parameter count, inside the learned points' range only; outside it says so instead.
"""

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np

from ternkws.golden.topology import Topology, count_parameters

# (family, BxRxC): prologue / epilogue / final get 2C channels, as in the default 3x1x64 (128).
# Learned from 8.5 k to 23.5 k trained parameters, ternary from 9.4 k to 18 k: the ranges overlap.
# The ternary family is measured in width (3x1xC) and in depth (3xRx64: the paper's "deeper models at
# the same parameter budget").
POINTS = [("learned", "3x1x16"), ("ternary", "3x1x64"), ("learned", "3x1x24"), ("learned", "3x1x32"),
          ("ternary", "3x1x96"), ("ternary", "3x1x128"), ("ternary", "3x2x64"), ("ternary", "3x3x64")]


def topology(family, name):
    c = Topology.from_name(name).blocks[0].channels
    kw = dict(prologue_channels=2 * c, epilogue_channels=2 * c, final_channels=2 * c)
    if family == "learned":
        return Topology.from_name(name, mixer="learned", **kw)
    return Topology.from_name(name, pattern="grouped", **kw)


def run_dir(epochs, augment="full"):
    """A run's folder name: e<epochs> for the default augmentation, e<epochs>-<augment> otherwise."""
    return f"e{epochs}" if augment == "full" else f"e{epochs}-{augment}"


def point_path(out_dir, family, name, epochs, augment="full"):
    """Each training run has its own folder: OUT/e<epochs>[-<augment>]/<family>-<BxRxC>.npz."""
    return Path(out_dir) / run_dir(epochs, augment) / f"{family}-{name}.npz"


def lengths(out_dir):
    """The runs (epochs, augment) with a folder under out_dir, by epochs then augmentation name."""
    from .augment import AUGMENT_PRESETS
    out_dir = Path(out_dir)
    found = []
    for d in (out_dir.glob("e*") if out_dir.is_dir() else []):
        epochs, _, augment = d.name[1:].partition("-")
        augment = augment or "full"
        if d.is_dir() and epochs.isdigit() and augment in AUGMENT_PRESETS:
            found.append((int(epochs), augment))
    return sorted(found, key=run_order)


def run_order(key):
    """Sort key of a run (epochs, augment): by epochs, the default augmentation before the others."""
    epochs, augment = key
    return epochs, augment != "full", augment


def run_title(key):
    """(30, "full") -> "30 epochs"; (30, "light") -> "30 epochs, light augmentation"."""
    epochs, augment = key
    return f"{epochs} epochs" if augment == "full" else f"{epochs} epochs, {augment} augmentation"


def select(points):
    """`--points family-BxRxC,...` -> the POINTS entries to train (all of them for None)."""
    if points is None:
        return list(POINTS)
    known = {f"{f}-{n}": (f, n) for f, n in POINTS}
    wanted = [p.strip() for p in points.split(",") if p.strip()]
    bad = [p for p in wanted if p not in known]
    if bad:
        from ternkws.golden.errors import UserError
        raise UserError(f"--points: unknown point {', '.join(bad)}; the frontier's points are {', '.join(known)}")
    return [known[p] for p in wanted]


def run_points(data, out_dir, epochs, threads, seed, log=print, points=None, augment="full"):
    from .augment import AugmentConfig
    from .trainer import TrainConfig, state_path, train
    for family, name in select(points):
        out = point_path(out_dir, family, name, epochs, augment)
        if out.is_file():
            log(f"frontier: {out} exists, kept")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = TrainConfig(epochs=epochs, seed=seed, threads=threads, augment=AugmentConfig.named(augment))
        resume = state_path(out).is_file()
        log(f"frontier: {family} {name} ({count_parameters(topology(family, name)):,} trained parameters), "
            f"{run_title((epochs, augment))}{', resuming' if resume else ''} -> {out}")
        train(data, topology(family, name), cfg, out, name=f"{family}-{name}",
              description=f"frontier point: {name} {family} 1x1, outer 2C", progress=False, log=log,
              resume=resume)
        yield out


def _interp_learned(learned, params):
    """The learned frontier (points sorted by parameters) at `params`, linear in log parameters; None
    outside the learned points' range."""
    xs = [math.log(p["params"]) for p in learned]
    if not learned or not xs[0] <= math.log(params) <= xs[-1]:
        return None
    return float(np.interp(math.log(params), xs, [p["int8"] for p in learned]))


def collect(out_dir, epochs, augment="full"):
    """Rows of the points of one run (epochs, augmentation), each compared with the learned frontier of
    the same run. A checkpoint whose recorded augmentation is not the folder's is refused."""
    from dataclasses import asdict

    from ternkws.golden import checkpoint
    from ternkws.golden.errors import UserError

    from .augment import AugmentConfig
    expected = asdict(AugmentConfig.named(augment))
    rows = []
    for family, name in POINTS:
        path = point_path(out_dir, family, name, epochs, augment)
        if not path.is_file():
            continue
        m = checkpoint.load(path)
        meta = m.meta
        if "augment" in meta and meta["augment"] != expected:
            raise UserError(f"{path}: trained with augmentation {meta['augment']}, not the '{augment}' preset its "
                            f"folder {run_dir(epochs, augment)}/ stands for; move it or retrain it")
        rows.append({"family": family, "topology": name, "file": str(path), "params": meta["trained_parameters"],
                     "int8": meta["int8_test_accuracy"], "float": meta["float_test_accuracy"],
                     "val": meta["float_val_accuracy"], "epochs": meta["epochs"], "best_epoch": meta["best_epoch"],
                     "train_minutes": round(meta["train_seconds"] / 60, 1), "dataset": meta["dataset"],
                     "ternary_entries": meta.get("ternary_entries", 0), "model_id": m.model_id,
                     "run": meta.get("name"), "augment": augment})
    learned = sorted((r for r in rows if r["family"] == "learned"), key=lambda r: r["params"])
    for r in rows:
        if r["family"] == "ternary":
            ref = _interp_learned(learned, r["params"])
            r["learned_at_same_params"] = ref
            r["ternary_minus_learned"] = None if ref is None else r["int8"] - ref
    return rows


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict(rows):
    """(words or None, the ternary rows inside the learned range in parameter order)."""
    inside = sorted((r for r in rows if r.get("ternary_minus_learned") is not None), key=lambda r: r["params"])
    if not inside:
        return None, inside
    diffs = [r["ternary_minus_learned"] for r in inside]
    words = "at or above" if min(diffs) >= 0 else ("below" if max(diffs) < 0 else "partly above, partly below")
    return words, inside


def markdown(runs):
    """runs: {(epochs, augment): rows}; one table per run, longest first, the default augmentation first."""
    total = sum(len(r) for r in runs.values())
    lines = ["## Frontier: accuracy against trained parameters", "",
             f"<!-- generated by python -m ternkws.golden.train.frontier; {total} points, "
             f"{len(POINTS)} per training length -->",
             "Both families on the same data, recipe and seed 0, at equal epochs within each table; int8 = "
             "bit-exact `forward_int` on the speaker-held-out test split. Topology BxRxC: B blocks of R "
             "sub-blocks of C channels, prologue/epilogue/final 2C; the ternary family is measured in width "
             "(3x1xC) and depth (3xRx64). \"learned at same params\": the learned points of the same length "
             "interpolated linearly in log(parameters)."]
    for key in sorted(runs, key=lambda k: (-k[0], *run_order(k)[1:])):
        rows, title = runs[key], run_title(key)
        epochs, augment = key
        if not rows:
            continue
        lines += ["", f"### {title} ({rows[0]['dataset']}, {len(rows)} of {len(POINTS)} points)", "",
                  "| family | topology | trained params | int8 test % | float test % | val % | learned at same params % "
                  "| ternary - learned | epochs (best) | train time |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(rows, key=lambda r: (r["family"], r["params"])):
            ref = r.get("learned_at_same_params")
            diff = r.get("ternary_minus_learned")
            lines.append(
                f"| {r['family']} | {r['topology']} | {r['params']:,} | {100 * r['int8']:.2f} | {100 * r['float']:.2f} | "
                f"{100 * r['val']:.2f} | {'-' if r['family'] == 'learned' else ('outside range' if ref is None else f'{100 * ref:.2f}')} | "
                f"{'-' if diff is None else f'{100 * diff:+.2f}'} | {r['epochs']} ({r['best_epoch']}) | {r['train_minutes']} min |")
        reused = [r for r in rows if r["run"] and r["run"] != f"{r['family']}-{r['topology']}"]
        for r in reused:
            lines += ["", f"The {r['family']} {r['topology']} point is the run that made checkpoint "
                          f"'{r['run']}' (model id {r['model_id']}): the same recipe, data, seed and epochs."]
        missing = [f"{f}-{n}" for f, n in POINTS if (f, n) not in {(r["family"], r["topology"]) for r in rows}]
        if missing:
            flag = "" if augment == "full" else f" --augment {augment}"
            lines += ["", f"Not measured at {title}: {', '.join(missing)} (`python -m ternkws.golden.train."
                          f"frontier --epochs {epochs}{flag} --points {','.join(missing)}` trains them; an interrupted "
                          f"run resumes from its last epoch)."]
        words, inside = verdict(rows)
        lines.append("")
        if words:
            gaps = ", ".join("%s %+.2f" % (r["topology"], 100 * r["ternary_minus_learned"]) for r in inside)
            lines.append(f"**Verdict at {title}:** the ternary frontier lies {words} the learned one "
                         f"(ternary - learned at equal trained parameters: {gaps} points).")
        else:
            lines.append(f"**Verdict at {title}:** not yet measurable (no ternary point inside the learned "
                         f"points' range).")
    lines += ["", "![frontier](frontier.png)", ""]
    return "\n".join(lines)


def plot(runs, path):
    """The longest training length solid and labelled (another augmentation dotted, hollow markers),
    shorter ones faded with the same markers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9.6, 4.6))
    order = [k for k in runs if runs[k]]
    longest = max((k[0] for k in order), default=0)
    for key in sorted(order, key=lambda k: (k[0] == longest, k[1] == "full")):     # the main run drawn last
        _plot_run(ax, runs[key], key, faded=key[0] < longest)
    ax.set_xscale("log")
    ax.set_xlabel("trained parameters")
    ax.set_ylabel("int8 test accuracy, speaker-held-out (%)")
    ax.set_title("Frontier at equal trained parameters and epochs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))    # outside: no point hidden
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_run(ax, rows, key, faded):
    series = [("learned 1x1", "o-", "C0", lambda r: r["family"] == "learned"),
              ("ternary (LFSR, grouped), width 3x1xC", "s-", "C1",
               lambda r: r["family"] == "ternary" and r["topology"].split("x")[1] == "1"),
              ("ternary, depth 3xRx64", "^--", "C2",
               lambda r: r["family"] == "ternary" and r["topology"].split("x")[2] == "64")]
    labelled = set()
    for label, style, color, member in series:
        pts = sorted((r for r in rows if member(r)), key=lambda r: r["params"])
        if not pts:
            continue
        other = key[1] != "full"
        ax.plot([p["params"] for p in pts], [100 * p["int8"] for p in pts], marker=style[0],
                ls=":" if other else style[1:], color=color, alpha=0.35 if faded else 1.0, mfc="none" if other else color,
                label=f"{label}, {run_title(key)}")
        for p in pts:
            if faded or other or p["topology"] + p["family"] in labelled:
                continue
            labelled.add(p["topology"] + p["family"])
            ax.annotate(p["topology"], (p["params"], 100 * p["int8"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=7)


def write_reports(out_dir, reports):
    """reports/frontier.{json,md,png} from every training run's checkpoints under out_dir."""
    runs = {k: collect(out_dir, *k) for k in lengths(out_dir)}
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / "frontier.json", "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "commit": _commit(),
                   "runs": [{"epochs": k[0], "augment": k[1], "verdict": verdict(runs[k])[0], "points": runs[k]}
                            for k in runs]},
                  f, indent=1)
    (reports / "frontier.md").write_text(markdown(runs) + "\n")
    if any(runs.values()):
        plot(runs, reports / "frontier.png")
    return runs


def main(argv=None):
    from .augment import AUGMENT_PRESETS
    p = argparse.ArgumentParser(prog="python -m ternkws.golden.train.frontier", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synth2", help="dataset folder (default data/synth2)")
    p.add_argument("--out", default="build/frontier", help="checkpoints folder (default build/frontier)")
    p.add_argument("--reports", default="reports", help="where frontier.{json,md,png} go (default reports)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of every point (default 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", default="full", choices=AUGMENT_PRESETS,
                   help="augmentation preset of every point (default full; others get their own folder)")
    p.add_argument("--points", default=None, metavar="LIST",
                   help="train only these points (comma-separated family-BxRxC, e.g. learned-3x1x16,ternary-3x2x64), "
                        "e.g. to split the frontier over two processes; the reports always cover every point")
    p.add_argument("--report", action="store_true", help="only rewrite the reports from the checkpoints")
    a = p.parse_args(argv)
    from ternkws.golden.errors import UserError
    try:
        select(a.points)                              # an unknown point: refused before any training
    except UserError as e:
        p.error(str(e))
    if not a.report:
        import os
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch
        torch.set_num_threads(a.threads)
        for _ in run_points(a.data, a.out, a.epochs, a.threads, a.seed, log=lambda s: print(s, flush=True),
                            points=a.points, augment=a.augment):
            write_reports(a.out, a.reports)
    runs = write_reports(a.out, a.reports)
    print(f"wrote {a.reports}/frontier.json, .md, .png ("
          + ", ".join(f"{len(rows)} of {len(POINTS)} points at {run_title(k)}" for k, rows in runs.items()) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
