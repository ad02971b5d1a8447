"""Speaker-fold cross-validation of the frontier (issue 12): the same points, recipe, seed and epochs
trained once per speaker fold, so that a figure is heard on 15 people and accents instead of 5.

    ternkws dataset --out data/synth2-fold1 --fold 1          # fold k's data (fold 0 is data/synth2)
    python -m ternkws.golden.train.crossval --fold 1 --epochs 30 --augment light \\
        --points learned-3x1x16,learned-3x1x24,ternary-3x1x64
    python -m ternkws.golden.train.crossval --fold 1 --recipes baseline,default,default-ema
    python -m ternkws.golden.train.crossval --report           # only rewrite reports/crossval.*

Why: one split's test and val readings of the same model differ by up to 8 points (reports/accuracy.md),
so a recipe decision on one split is a decision on 5 speakers. voices.FOLDS rotates three disjoint
groups of 5 held-out speakers (golden/DATA.md, Splits): over the folds every group is the test split once.

Fold k's points are ordinary frontier points (frontier.run_points, resumable, one `ternkws train` each)
in build/crossval/fold<k>/e<epochs>[-<augment>]/<family>-<BxRxC>.npz, trained on data/synth2-fold<k>;
the data is checked to be fold k's before any training. Fold 0 is the frontier's own run on data/synth2:
its points come from build/crossval/fold0/ when trained there, else build/frontier/ (seed 0), else the
seed-0 figures recorded in reports/frontier.json (the same run; the report says which). The report,
reports/crossval.{json,md,png}: per point and fold the int8 test accuracy, the mean over the folds that
measured it, and each ternary point's difference from the learned frontier of the same fold
(frontier._interp_learned), then their mean.

`--recipes` cross-validates the bundled models' own commands (RECIPES): fold k's learned baseline
(build/crossval/fold<k>/recipe/baseline.npz) is trained first and is the teacher of that fold's distilled
ternary recipes, so that no model hears the fold's test people through its teacher. Fold 0's figures are
the bundled checkpoints' (golden/models), or a fold-0 run of the recipe in build/crossval/fold0/recipe/,
or the record of the same command in reports/rtl_checkpoints.json (int8 only).
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError
from ternkws.golden.voices import FOLDS, HELD_OUT_GROUPS, split_of_speaker

from . import frontier

SEED = 0        # every fold's points use training seed 0 (the fold is the thing that varies)


# The bundled models' commands: name -> (what it is, TrainConfig overrides, arch, fold-0 checkpoint, the
# fold-0 run recorded in reports/rtl_checkpoints.json when there is no checkpoint). The ternary recipes
# distil from the fold's own `baseline`.
RECIPES = {
    "baseline": ("learned 3x1x64, 20 epochs (golden/models/baseline.npz's command)",
                 {"epochs": 20}, "learned", "golden/models/baseline.npz", None),
    "default": ("ternary 3x1x64 grouped, 30 epochs, distilled from the fold's baseline "
                "(golden/models/default.npz's command)",
                {"epochs": 30, "teacher": "baseline"}, "ternary", "golden/models/default.npz", None),
    "default-ema": ("the default's command with --ema 0.998 --lr 0.01 (README: the retraining recipe)",
                    {"epochs": 30, "teacher": "baseline", "ema": 0.998, "lr": 0.01}, "ternary", None,
                    "build/train/default-ema-lr1e-2-s0.npz"),
    "default-ema-unk2": ("the retraining recipe with --unknown-weight 2 (the unknown class's clips count twice)",
                         {"epochs": 30, "teacher": "baseline", "ema": 0.998, "lr": 0.01, "unknown_weight": 2.0},
                         "ternary", None, "build/train/unk2-ema-s0.npz"),
}


def select_recipes(names):
    wanted = [n.strip() for n in (names or "").split(",") if n.strip()]
    bad = [n for n in wanted if n not in RECIPES]
    if bad:
        raise UserError(f"--recipes: unknown recipe {', '.join(bad)}; choose among {', '.join(RECIPES)}")
    return wanted


def recipe_path(out_dir, fold, name):
    return fold_out(out_dir, fold) / "recipe" / f"{name}.npz"


def run_recipes(data, out_dir, fold, names, threads, log=print):
    """Train fold `fold`'s recipes `names` (resumable; an existing checkpoint is kept), the fold's baseline
    first when a distilled recipe needs it. Yields each checkpoint written."""
    import dataclasses

    from .trainer import PRESETS, TrainConfig, state_path, train
    names = list(names)
    if any(RECIPES[n][1].get("teacher") for n in names) and "baseline" not in names:
        names.insert(0, "baseline")
    for name in sorted(names, key=lambda n: n != "baseline"):
        what, overrides, arch, _, _ = RECIPES[name]
        out = recipe_path(out_dir, fold, name)
        if out.is_file():
            log(f"recipe {name}: {out} exists, kept")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        over = dict(overrides)
        if over.get("teacher"):
            over["teacher"] = str(recipe_path(out_dir, fold, over["teacher"]))
        cfg = dataclasses.replace(TrainConfig(seed=SEED, threads=threads), **over)
        resume = state_path(out).is_file()
        log(f"recipe {name}: {what}, seed {SEED}{', resuming' if resume else ''} -> {out}")
        train(data, PRESETS[arch][0], cfg, out, name=name, description=f"cross-validation: {what}",
              progress=False, log=log, resume=resume)
        yield out


def _recorded(file, rtl_json):
    """int8 test accuracy of `file` in reports/rtl_checkpoints.json, or None."""
    path = Path(rtl_json)
    if not path.is_file():
        return None
    row = next((r for r in json.loads(path.read_text()).get("checkpoints", []) if r.get("file") == file), None)
    return None if row is None or row.get("int8_test_accuracy") is None else row["int8_test_accuracy"]


def recipe_rows(out_dir="build/crossval", rtl_json="reports/rtl_checkpoints.json"):
    """{recipe: {fold: {int8, val, source}}} of every recipe measured on any fold."""
    from ternkws.golden import checkpoint
    out = {}
    for name, (_, _, _, bundled, record) in RECIPES.items():
        got = {}
        for k in FOLDS:
            path = recipe_path(out_dir, k, name)
            if not path.is_file() and k == 0 and bundled:
                path = Path(bundled)
            if path.is_file():
                meta = checkpoint.load(path).meta
                got[k] = {"int8": meta["int8_test_accuracy"], "val": meta.get("float_val_accuracy"),
                          "dataset": meta.get("dataset"), "source": str(path)}
            elif k == 0 and record and (acc := _recorded(record, rtl_json)) is not None:
                got[k] = {"int8": acc, "val": None, "dataset": "data/synth2",
                          "source": f"{record} (reports/rtl_checkpoints.json)"}
        if got:
            out[name] = got
    return out


def recipes_markdown(rows):
    if not rows:
        return ""
    ks = sorted(FOLDS)
    lines = ["### The bundled models' recipes, cross-validated", "",
             "The bundled checkpoints' own commands, trained once per fold (seed 0, full augmentation); the "
             "distilled ternary recipes learn from their fold's baseline. int8 = bit-exact `forward_int` on "
             "each fold's test split; val in brackets.", "",
             "| recipe | " + " | ".join(f"fold {k} int8 % (val)" for k in ks) + " | mean over folds | read from |",
             "|---|" + "---:|" * len(ks) + "---:|---|"]
    for name, got in rows.items():
        cells = []
        for k in ks:
            r = got.get(k)
            cells.append("not run" if r is None else f"{100 * r['int8']:.2f}"
                         + ("" if r["val"] is None else f" ({100 * r['val']:.2f})"))
        mean = f"{100 * np.mean([r['int8'] for r in got.values()]):.2f}" + (
            "" if sorted(got) == ks else f" (fold {', '.join(map(str, sorted(got)))} only)")
        src = "; ".join(f"{k}: {got[k]['source']}" for k in sorted(got))
        lines.append(f"| {name}: {RECIPES[name][0]} | " + " | ".join(cells) + f" | {mean} | {src} |")
    full = {n: g for n, g in rows.items() if sorted(g) == ks}
    if "baseline" in full:
        b = full["baseline"]
        for n, g in full.items():
            if n != "baseline":
                d = [g[k]["int8"] - b[k]["int8"] for k in ks]
                lines.append("")
                lines.append(f"{n} - baseline per fold: " + ", ".join(f"{100 * x:+.2f}" for x in d)
                             + f" (mean {100 * np.mean(d):+.2f} points).")
    lines.append("")
    return "\n".join(lines)


def fold_data(fold, base="data/synth2"):
    """The default dataset folder of fold `fold`: data/synth2 for 0, data/synth2-fold<k> otherwise."""
    return base if fold == 0 else f"{base}-fold{fold}"


def check_fold(data_dir, fold):
    """UserError in one sentence when the dataset's manifest puts a speaker in another split than fold
    `fold` does (the data was generated for another fold, or is not a `ternkws dataset` set)."""
    split_of = split_of_speaker(fold)
    manifest = Path(data_dir) / "manifest.csv"
    if not manifest.is_file():
        raise UserError(f"{manifest} does not exist: generate fold {fold}'s data with "
                        f"`ternkws dataset --out {data_dir} --fold {fold}`")
    with open(manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            want = split_of.get(row["speaker"])
            if want is not None and want != row["split"]:
                raise UserError(f"{data_dir} is not speaker fold {fold}'s data: its {row['split']} split holds "
                                f"{row['speaker']}, whom fold {fold} puts in {want}; generate it with "
                                f"`ternkws dataset --out {data_dir} --fold {fold}`")


def fold_out(out_dir, fold):
    return Path(out_dir) / f"fold{fold}"


def _plain(rows, source):
    """frontier.collect rows -> the seed-0 figures crossval keeps, one dict per point."""
    kept = []
    for r in rows:
        one = next((q for q in r.get("per_seed", [r]) if q.get("seed", SEED) == SEED), None)
        if one is None:
            continue
        kept.append({"family": r["family"], "topology": r["topology"], "params": r["params"],
                     "int8": one["int8"], "float": one["float"], "val": one["val"],
                     "best_epoch": one["best_epoch"], "train_minutes": one["train_minutes"],
                     "dataset": r.get("dataset"), "source": source})
    return kept


def fold_rows(fold, epochs, augment, out_dir="build/crossval", frontier_out="build/frontier",
              frontier_json="reports/frontier.json"):
    """The seed-0 points of one fold and run (epochs, augment), each with the place it was read from."""
    here = fold_out(out_dir, fold)
    rows = _plain(frontier.collect(here, epochs, augment), str(here)) if here.is_dir() else []
    if fold != 0:
        return rows
    have = {(r["family"], r["topology"]) for r in rows}
    if Path(frontier_out).is_dir():
        more = _plain(frontier.collect(frontier_out, epochs, augment), str(frontier_out))
        rows += [r for r in more if (r["family"], r["topology"]) not in have]
        have = {(r["family"], r["topology"]) for r in rows}
    path = Path(frontier_json)
    if path.is_file():
        run = next((r for r in json.loads(path.read_text())["runs"]
                    if (r["epochs"], r["augment"]) == (epochs, augment)), None)
        more = _plain(run["points"], str(path)) if run else []
        rows += [r for r in more if (r["family"], r["topology"]) not in have]
    return rows


def compare(folds):
    """folds: {fold: rows}. Adds each ternary row's difference from its own fold's learned frontier and
    returns (the per-point summary: [{family, topology, params, int8 {fold: acc}, val {fold: acc}, mean,
    gap {fold: diff}, gap_mean, every_fold}], the folds with any point); a mean is over the folds that
    measured the point, every_fold says whether that is every fold with any point."""
    for rows in folds.values():
        learned = sorted((r for r in rows if r["family"] == "learned"), key=lambda r: r["params"])
        for r in rows:
            if r["family"] == "ternary":
                ref = frontier._interp_learned(learned, r["params"])
                r["learned_at_same_params"] = ref
                r["ternary_minus_learned"] = None if ref is None else r["int8"] - ref
    points = sorted({(r["family"], r["topology"], r["params"]) for rows in folds.values() for r in rows},
                    key=lambda p: p[2])
    measured = [k for k, rows in folds.items() if rows]
    table = []
    for family, topology, params in points:
        by_fold = {k: next((r for r in rows if (r["family"], r["topology"]) == (family, topology)), None)
                   for k, rows in folds.items()}
        int8 = {k: r["int8"] for k, r in by_fold.items() if r is not None}
        gap = {k: r["ternary_minus_learned"] for k, r in by_fold.items()
               if r is not None and r.get("ternary_minus_learned") is not None}
        table.append({"family": family, "topology": topology, "params": params, "int8": int8,
                      "val": {k: r["val"] for k, r in by_fold.items() if r is not None},
                      "mean": float(np.mean(list(int8.values()))),
                      "gap": gap, "gap_mean": float(np.mean(list(gap.values()))) if gap else None,
                      "every_fold": sorted(int8) == measured and (family == "learned" or sorted(gap) == measured)})
    return table, measured


def _speakers(fold):
    val, test = FOLDS[fold]
    return f"{val}: {', '.join(HELD_OUT_GROUPS[val])}", f"{test}: {', '.join(HELD_OUT_GROUPS[test])}"


def markdown(folds, table, every, key):
    title = frontier.run_title(key)
    ks = sorted(folds)
    lines = ["## Speaker-fold cross-validation", "",
             "<!-- generated by python -m ternkws.golden.train.crossval -->",
             f"The frontier's points trained once per speaker fold ({title}, training seed {SEED}); int8 = "
             "bit-exact `forward_int` on that fold's speaker-held-out test split. The three folds' test "
             "splits are disjoint groups of 5 speakers (golden/DATA.md, Splits), so the mean over the folds "
             "is heard on 15 people and accents. \"ternary - learned\": each ternary point against the learned "
             "points of the same fold, interpolated linearly in log(parameters).", "",
             "| fold | val speakers | test speakers | data | points read from |", "|---|---|---|---|---|"]
    for k in ks:
        val, test = _speakers(k)
        data = sorted({r["dataset"] for r in folds[k] if r.get("dataset")})
        src = sorted({r["source"] for r in folds[k]})
        lines.append(f"| {k} | {val} | {test} | {', '.join(data) or '-'} | {', '.join(src) or 'not run'} |")
    lines += ["", "| family | topology | trained params | " + " | ".join(f"fold {k} int8 %" for k in ks)
              + " | mean over folds | ternary - learned per fold | ternary - learned, mean |",
              "|---|---|---:|" + "---:|" * len(ks) + "---:|---|---:|"]
    for p in table:
        cells = [f"{100 * p['int8'][k]:.2f}" if k in p["int8"] else "not run" for k in ks]
        gaps = ", ".join(f"{k}: {100 * p['gap'][k]:+.2f}" for k in ks if k in p["gap"]) or "-"
        mean = f"{100 * p['mean']:.2f}" + ("" if p["every_fold"] else
                                          f" (fold {', '.join(map(str, sorted(p['int8'])))} only)")
        gm = "-" if p["gap_mean"] is None else f"{100 * p['gap_mean']:+.2f}"
        lines.append(f"| {p['family']} | {p['topology']} | {p['params']:,} | " + " | ".join(cells)
                     + f" | {mean} | {gaps if p['family'] == 'ternary' else '-'} | {gm if p['family'] == 'ternary' else '-'} |")
    lines += ["", "Validation accuracy (the same points, each fold's val split): "
              + "; ".join(f"{p['family']} {p['topology']} " + ", ".join(f"{100 * p['val'][k]:.2f}" for k in ks
                                                                       if k in p["val"]) for p in table) + "."]
    gaps = [p for p in table if p["gap_mean"] is not None and p["every_fold"]]
    if gaps and len(every) > 1:
        per = [g for p in gaps for g in p["gap"].values()]
        words = frontier.verdict_words(per)
        lines += ["", f"**Verdict over folds {', '.join(map(str, every))}:** the ternary points lie {words} the "
                      "learned frontier of their own fold (" + "; ".join(
                          f"{p['topology']} mean {100 * p['gap_mean']:+.2f}" for p in gaps)
                  + f" points; {sum(g < 0 for g in per)} of {len(per)} fold comparisons negative)."]
        spread = [max(p["int8"].values()) - min(p["int8"].values()) for p in table if p["every_fold"]]
        if spread:
            lines.append(f"Fold to fold, a point's int8 test accuracy moves by {100 * min(spread):.2f} to "
                         f"{100 * max(spread):.2f} points.")
    else:
        lines += ["", "**Verdict:** not yet measurable (no ternary point measured on two or more folds inside "
                      "each fold's learned range)."]
    lines += ["", "![crossval](crossval.png)", ""]
    return "\n".join(lines)


def plot(folds, table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.4, 4.4))
    colors = {"learned": "C0", "ternary": "C1"}
    for k, rows in sorted(folds.items()):
        for fam, style in (("learned", "o"), ("ternary", "s")):
            pts = sorted((r for r in rows if r["family"] == fam), key=lambda r: r["params"])
            if pts:
                ax.plot([r["params"] for r in pts], [100 * r["int8"] for r in pts], marker=style, ls=":",
                        color=colors[fam], alpha=0.35, mfc="none")
                ax.annotate(f"f{k}", (pts[-1]["params"], 100 * pts[-1]["int8"]), textcoords="offset points",
                            xytext=(4, 0), fontsize=7, alpha=0.6)
    for fam, style in (("learned", "o-"), ("ternary", "s-")):
        pts = [p for p in table if p["family"] == fam and p["every_fold"]]
        if pts:
            ax.plot([p["params"] for p in pts], [100 * p["mean"] for p in pts], style, color=colors[fam],
                    label=f"{fam} 1x1, mean over folds")
            for p in pts:
                ax.annotate(p["topology"], (p["params"], 100 * p["mean"]), textcoords="offset points",
                            xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("trained parameters")
    ax.set_ylabel("int8 test accuracy, speaker-held-out (%)")
    ax.set_title("Speaker-fold cross-validation (dotted: one fold, solid: the mean)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _recorded_source(source, path):
    return source if str(source).startswith(str(path)) else f"{path} (recorded from {source})"


def keep_recorded(folds, recipes, key, path):
    """Add what the report at `path` (reports/crossval.json) recorded for the same run `key` and is not
    measured here (its checkpoints are in another checkout's build/): a rewrite never loses a fold's
    figures. Points are matched by (family, topology), recipes by name and fold; the source says where a
    figure was recorded."""
    path = Path(path)
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    if (old.get("epochs"), old.get("augment")) == tuple(key):
        for k, fold in old.get("folds", {}).items():
            rows = folds.setdefault(int(k), [])
            have = {(r["family"], r["topology"]) for r in rows}
            rows += [{**r, "source": _recorded_source(r["source"], path)} for r in fold.get("points", [])
                     if (r["family"], r["topology"]) not in have]
    for name, got in old.get("recipes", {}).items():
        if name in RECIPES:
            mine = recipes.setdefault(name, {})
            for k, r in got.items():
                mine.setdefault(int(k), {**r, "source": _recorded_source(r["source"], path)})


def write_reports(key, out_dir="build/crossval", reports="reports", frontier_out="build/frontier"):
    """reports/crossval.{json,md,png} for the run `key` (epochs, augment) over every fold; figures recorded
    by the previous report and not measured here are kept (keep_recorded)."""
    reports = Path(reports)
    folds = {k: fold_rows(k, *key, out_dir=out_dir, frontier_out=frontier_out,
                          frontier_json=reports / "frontier.json") for k in FOLDS}
    recipes = recipe_rows(out_dir, reports / "rtl_checkpoints.json")
    keep_recorded(folds, recipes, key, reports / "crossval.json")
    for name in recipes:
        recipes[name] = dict(sorted(recipes[name].items()))
    table, every = compare(folds)
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / "crossval.json", "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "commit": frontier._commit(), "epochs": key[0],
                   "augment": key[1], "seed": SEED, "folds_measured": every,
                   "folds": {str(k): {"val": FOLDS[k][0], "test": FOLDS[k][1], "points": rows}
                             for k, rows in folds.items()},
                   "points": [{**p, "int8": {str(k): v for k, v in p["int8"].items()},
                               "val": {str(k): v for k, v in p["val"].items()},
                               "gap": {str(k): v for k, v in p["gap"].items()}} for p in table],
                   "recipes": {n: {str(k): v for k, v in g.items()} for n, g in recipes.items()}}, f, indent=1)
    (reports / "crossval.md").write_text(markdown(folds, table, every, key) + "\n" + recipes_markdown(recipes))
    if table:
        plot(folds, table, reports / "crossval.png")
    return folds, table, every


def main(argv=None):
    from .augment import AUGMENT_PRESETS
    p = argparse.ArgumentParser(prog="python -m ternkws.golden.train.crossval", description=__doc__.split("\n\n")[0])
    p.add_argument("--fold", type=int, default=None, metavar="K",
                   help=f"train fold K's points ({', '.join(map(str, FOLDS))}); without it only the reports")
    p.add_argument("--data", default=None, help="fold K's dataset (default data/synth2, data/synth2-fold<K>)")
    p.add_argument("--out", default="build/crossval", help="checkpoints folder (default build/crossval)")
    p.add_argument("--frontier-out", default="build/frontier",
                   help="the frontier's checkpoints, read for fold 0 (default build/frontier)")
    p.add_argument("--reports", default="reports", help="where crossval.{json,md,png} go (default reports)")
    p.add_argument("--epochs", type=int, default=30, help="epochs of every point (default 30)")
    p.add_argument("--augment", default="light", choices=AUGMENT_PRESETS,
                   help="augmentation preset (default light: the frontier run with the most seeds)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--points", default="learned-3x1x16,learned-3x1x24,ternary-3x1x64", metavar="LIST",
                   help="points to train (frontier names; default learned-3x1x16,learned-3x1x24,ternary-3x1x64)")
    p.add_argument("--recipes", default=None, metavar="LIST",
                   help=f"with --fold: train the bundled models' recipes instead of points ({', '.join(RECIPES)}; "
                        "the fold's baseline first, the teacher of the others)")
    p.add_argument("--report", action="store_true", help="only rewrite the reports")
    a = p.parse_args(argv)
    key = (a.epochs, a.augment)
    try:
        frontier.select(a.points)
        recipes = select_recipes(a.recipes)
        if a.fold is not None and not a.report:
            data = a.data or fold_data(a.fold)
            check_fold(data, a.fold)       # an unknown fold, or another fold's data: refused here
            import os
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import torch
            torch.set_num_threads(a.threads)
            log = lambda s: print(f"fold {a.fold}: {s}", flush=True)  # noqa: E731
            runs = (run_recipes(data, a.out, a.fold, recipes, a.threads, log=log) if recipes else
                    frontier.run_points(data, fold_out(a.out, a.fold), a.epochs, a.threads, SEED, log=log,
                                        points=a.points, augment=a.augment))
            for _ in runs:
                write_reports(key, a.out, a.reports, a.frontier_out)
        folds, table, every = write_reports(key, a.out, a.reports, a.frontier_out)
    except UserError as e:
        p.error(str(e))
    print(f"wrote {a.reports}/crossval.json, .md, .png ({frontier.run_title(key)}; "
          + ", ".join(f"fold {k}: {len(rows)} points" for k, rows in folds.items())
          + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
