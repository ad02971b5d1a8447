"""How sensitive is the int8 accuracy to the PTQ calibration? (No torch.)

    python -m ternkws.golden.train.calibration --model golden/models/default.npz --data data/synth \
        [--percentiles 99.9 99.99 99.999 100] [--sizes 256 1024] [--split test]

Re-quantizes the checkpoint's float weights with golden.network.quantize for each (percentile, number of
calibration clips drawn from the train split) and measures int8 (forward_int) accuracy on the split.
The percentile is golden.network.CALIB_PERCENTILE, set for the duration of each run only.
"""

import argparse
import contextlib

import numpy as np

from ternkws.golden import checkpoint, network
from ternkws.golden.data import list_examples
from ternkws.golden.evaluate import evaluate_features
from ternkws.golden.features import normalize
from ternkws.golden.labels import LABELS

from .features import load_features


@contextlib.contextmanager
def percentile(p):
    old = network.CALIB_PERCENTILE
    network.CALIB_PERCENTILE = p
    try:
        yield
    finally:
        network.CALIB_PERCENTILE = old


def study(model, data_dir, percentiles, sizes, split="test", seed=1, jobs=2, log=print):
    train = load_features(data_dir, list_examples(data_dir, "train"), model.features, progress=False)
    ev = load_features(data_dir, list_examples(data_dir, split), model.features, progress=False)
    y = np.array([model.labels.index(LABELS[i]) for i in ev.labels], np.int64)
    rows = []
    rng = np.random.default_rng(seed)
    for n in sizes:
        idx = np.sort(rng.choice(len(train), size=min(n, len(train)), replace=False))
        calib = normalize(train.mfcc[idx], model.feature_mean, model.feature_scale)
        for p in percentiles:
            with percentile(p):
                m = checkpoint.make_model(model.topology, model.float_arrays, calib, model.feature_mean,
                                          model.feature_scale, model.meta, model.features, model.labels)
            r = evaluate_features(m, ev.mfcc, y, jobs=jobs, progress=False)
            rows.append({"percentile": p, "calib_clips": len(idx), "accuracy_float": r["accuracy_float"],
                         "accuracy_int8": r["accuracy_int8"], "agreement": r["int8_float_agreement"]})
            log(f"percentile {p:>7g}  calib {len(idx):5d}  float {100 * r['accuracy_float']:.2f}%  "
                f"int8 {100 * r['accuracy_int8']:.2f}%  agree {100 * r['int8_float_agreement']:.2f}%")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(checkpoint.DEFAULT_MODEL))
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--percentiles", type=float, nargs="+", default=[99.9, 99.99, 99.999, 100.0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    study(checkpoint.load(args.model), args.data, args.percentiles, args.sizes, args.split, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
