"""reports/accuracy.{json,md}: the accuracy table of the bundled models (no torch needed).

    python -m golden.train.report --data data/synth [--out reports] [--models default baseline budget]

Every model is evaluated afresh on the speaker-held-out test split (golden float forward and bit-exact
int8 forward_int); training facts (epochs, time, val accuracy) come from the checkpoint metadata.
"""

import argparse
import json
from pathlib import Path

from golden import checkpoint
from golden.evaluate import evaluate
from golden.topology import count_parameters, count_ternary_entries

ROWS = {"default": "ternary 3x1x64 (default.npz)", "baseline": "learned-1x1 baseline 3x1x64 (baseline.npz)",
        "budget": "same-budget ternary (budget.npz)"}


def stored_weight_bytes(model):
    """Bytes the chip stores for a checkpoint, at the widths of the int8 contract: int8 weights (depthwise,
    learned 1x1, classifier) 1 byte each; post-op multipliers 2 bytes (16 bit), biases 4 bytes (32 bit),
    shifts 1 byte. The ternary 1x1 entries are generated on chip and not counted."""
    weights = other = 0
    for k, v in model.int_arrays.items():
        n = int(getattr(v, "size", 1))
        if k.endswith((".dw", ".pw", ".weight")):
            weights += n
        elif k.endswith((".mult", ".mult_res")):
            other += 2 * n
        elif k.endswith(".bias"):
            other += 4 * n
        else:
            other += n
    return {"weights": weights, "post_op": other, "total": weights + other}


def model_row(name, model, result):
    top = model.topology
    meta = model.meta
    return {
        "model": name,
        "file": Path(model.path).name,
        "description": meta.get("description", ""),
        "topology": top.name,
        "mixer": top.mixer,
        "trained_parameters": count_parameters(top),
        "stored_bytes": stored_weight_bytes(model),
        "ternary_entries_generated": count_ternary_entries(top) if top.mixer == "ternary" else 0,
        "one_by_one_entries_stored": count_ternary_entries(top) if top.mixer == "learned" else 0,
        "test_n": result["n"],
        "accuracy_float": result["accuracy_float"],
        "accuracy_int8": result["accuracy_int8"],
        "int8_float_agreement": result["int8_float_agreement"],
        "per_class_int8": {k: v["accuracy_int8"] for k, v in result["per_class"].items()},
        "float_val_accuracy": meta.get("float_val_accuracy"),
        "epochs": meta.get("epochs"),
        "train_seconds": meta.get("train_seconds"),
        "model_id": model.model_id,
    }


def markdown(rows, data):
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    def minutes(s):
        return "-" if s is None else f"{s / 60:.1f} min"
    base = next((r for r in rows if r["mixer"] == "learned"), None)
    lines = [f"Speaker-held-out test split of `{data}`; float = golden float64 forward, int8 = bit-exact "
             f"`forward_int` (what the RTL computes).", "",
             "| model | topology | float test % | int8 test % | int8 - float | trained params | "
             "stored bytes (int8 weights / total) | 1x1 entries generated on chip | epochs | train time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = ""
        if base and r is not base:
            ratio = f" ({100 * r['trained_parameters'] / base['trained_parameters']:.0f}% of baseline)"
        lines.append(
            f"| {r['model']} | {r['topology']} {r['mixer']} | {pct(r['accuracy_float'])} | {pct(r['accuracy_int8'])} | "
            f"{100 * (r['accuracy_int8'] - r['accuracy_float']):+.2f} | {r['trained_parameters']:,}{ratio} | "
            f"{r['stored_bytes']['weights']:,} / {r['stored_bytes']['total']:,} | "
            f"{r['ternary_entries_generated']:,} | {r['epochs']} | "
            f"{minutes(r['train_seconds'])} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="reports")
    p.add_argument("--models", nargs="*", default=list(ROWS))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--extra-md", default=None, help="Markdown file appended to accuracy.md (findings)")
    args = p.parse_args(argv)
    rows = []
    for name in args.models:
        path = Path(name) if name.endswith(".npz") else checkpoint.MODELS_DIR / f"{name}.npz"
        if not path.exists():
            print(f"skipping {name}: {path} does not exist")
            continue
        model = checkpoint.load(path)
        result = evaluate(model, args.data, "test", jobs=args.jobs)
        rows.append(model_row(path.stem if name.endswith(".npz") else name, model, result))
        print(f"{name}: float {100 * result['accuracy_float']:.2f}%  int8 {100 * result['accuracy_int8']:.2f}%")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "accuracy.json", "w") as f:
        json.dump({"data": args.data, "split": "test", "models": rows}, f, indent=1)
    md = "# Accuracy\n\n" + markdown(rows, args.data) + "\n"
    if args.extra_md:
        md += "\n" + Path(args.extra_md).read_text()
    (out / "accuracy.md").write_text(md)
    print(f"wrote {out / 'accuracy.json'} and {out / 'accuracy.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
