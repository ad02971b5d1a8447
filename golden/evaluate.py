"""Float and int8 accuracy of a checkpoint on a dataset split (what `ternkws eval` prints). No torch.

Features: golden.features.mfcc per clip (cached in the ternkws cache folder, golden/train/features.py),
normalized (float) and quantized (int8) with the checkpoint's own feature map, exactly as
`ternkws infer` does. Float: golden.network.forward_float in batches. Int8: golden.network.forward_int,
one clip at a time (the bit-exact contract the RTL is compared against), in `jobs` worker processes.

Speed: the golden `ternary_mixer` regenerates each layer's LFSR matrix on every call (80% of the time of
forward_int). The workers memoize `ternary_matrix` (a pure function of its arguments, so the results
are bit-identical): about 5x faster.
"""

import contextlib
import os
from multiprocessing import get_context

import numpy as np

from .data import list_examples
from .features import normalize, quantize
from .network import _ternary, forward_float, forward_int

FLOAT_BATCH = 128

_worker_model = None


@contextlib.contextmanager
def cached_ternary():
    """Memoize golden.ternary_mixer.ternary_matrix for the duration (same values, no regeneration)."""
    from . import ternary_mixer
    original = ternary_mixer.ternary_matrix
    ternary_mixer.ternary_matrix = _ternary
    try:
        yield
    finally:
        ternary_mixer.ternary_matrix = original


def _init_worker(model):
    global _worker_model
    _worker_model = model
    from . import ternary_mixer
    ternary_mixer.ternary_matrix = _ternary   # worker process only: it ends with the pool


def _int_logits(xq):
    m = _worker_model
    return forward_int(m.topology, m.int_arrays, xq)


def int8_logits(model, xq, jobs=None, progress=True):
    """(N, n_classes) int64 logits of forward_int on every clip of xq (N, T, n_mfcc) int8."""
    jobs = jobs or min(2, os.cpu_count() or 1)
    out = np.zeros((len(xq), model.topology.n_classes), np.int64)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(xq), desc="int8 forward", unit="clip", dynamic_ncols=True)
    if jobs > 1 and len(xq) >= 16:
        ctx = get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(model,)) as pool:
            for i, logits in enumerate(pool.imap(_int_logits, list(xq), chunksize=8)):
                out[i] = logits
                if bar:
                    bar.update(1)
    else:
        with cached_ternary():
            for i, x in enumerate(xq):
                out[i] = forward_int(model.topology, model.int_arrays, x)
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    return out


def float_logits(model, xf):
    return np.concatenate([forward_float(model.topology, model.float_arrays, xf[i:i + FLOAT_BATCH])
                           for i in range(0, len(xf), FLOAT_BATCH)]) if len(xf) else np.zeros((0, model.topology.n_classes))


def confusion(y_true, y_pred, n):
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def summarize(labels, y, pred_float, pred_int):
    """The result object of `ternkws eval --json`."""
    n = len(y)
    per_class = {}
    for k, name in enumerate(labels):
        sel = y == k
        c = int(sel.sum())
        per_class[name] = {
            "n": c,
            "accuracy_float": float(np.mean(pred_float[sel] == k)) if c else None,
            "accuracy_int8": float(np.mean(pred_int[sel] == k)) if c else None,
        }
    return {
        "n": int(n),
        "accuracy_float": float(np.mean(pred_float == y)) if n else None,
        "accuracy_int8": float(np.mean(pred_int == y)) if n else None,
        "int8_float_agreement": float(np.mean(pred_int == pred_float)) if n else None,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_int8": confusion(y, pred_int, len(labels)).tolist(),
        "confusion_float": confusion(y, pred_float, len(labels)).tolist(),
    }


def per_group(groups, y, pred_float, pred_int):
    """{group: {n, accuracy_float, accuracy_int8}} for clips labelled by `groups` (e.g. the speaker), in
    sorted group order."""
    groups = np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        out[g] = {"n": int(sel.sum()), "accuracy_float": float(np.mean(pred_float[sel] == y[sel])),
                  "accuracy_int8": float(np.mean(pred_int[sel] == y[sel]))}
    return out


def evaluate_features(model, mfccs, y, jobs=None, progress=True, speakers=None, contents=None):
    """Accuracy summary on raw MFCCs (N, T, n_mfcc) with true label indices y (model.labels order);
    with `speakers` (one per clip) also per speaker; with `contents` (Example.content per clip, None for
    keywords) also per content of the unknown and silence clips."""
    xf = normalize(mfccs, model.feature_mean, model.feature_scale)
    xq = quantize(mfccs, model.feature_mean, model.feature_scale)
    pred_float = np.argmax(float_logits(model, xf), axis=1) if len(y) else np.zeros(0, np.int64)
    pred_int = np.argmax(int8_logits(model, xq, jobs, progress), axis=1) if len(y) else np.zeros(0, np.int64)
    result = summarize(model.labels, np.asarray(y), pred_float, pred_int)
    if speakers is not None:
        result["per_speaker"] = per_group(speakers, np.asarray(y), pred_float, pred_int)
    if contents is not None:
        sel = np.array([c is not None for c in contents], bool)
        result["per_content"] = per_group([c for c in contents if c is not None], np.asarray(y)[sel],
                                          pred_float[sel], pred_int[sel]) if sel.any() else {}
    return result


def evaluate(model, data_dir, split="test", jobs=None, progress=True, limit=None, cache=True):
    """Float and int8 accuracy of `model` on `split` of `data_dir` (see golden.data.list_examples)."""
    from ternkws.golden.errors import UserError

    from .train.features import load_features

    examples = list_examples(data_dir, split)
    if limit:
        examples = examples[:limit]
    unknown = sorted({e.label for e in examples} - set(model.labels))
    if unknown:
        raise UserError(f"{data_dir}: labels {unknown} are not among the model's labels {list(model.labels)}")
    feats = load_features(data_dir, examples, model.features, jobs=jobs, progress=progress, cache=cache)
    y = np.array([model.labels.index(e.label) for e in examples], np.int64)
    result = evaluate_features(model, feats.mfcc, y, jobs, progress, speakers=[e.speaker for e in examples],
                               contents=[e.content for e in examples])
    result.update({"split": split, "data": str(data_dir), "model": model.path,
                   "model_id": model.model_id, "topology": model.topology.name,
                   "mixer": model.topology.mixer})
    return result


def format_table(result):
    """Human-readable accuracy table of an evaluate() result."""
    def pct(v):
        return "   -  " if v is None else f"{100 * v:6.2f}"
    lines = [f"{'class':10s} {'n':>6s} {'float %':>8s} {'int8 %':>8s}"]
    for name, r in result["per_class"].items():
        lines.append(f"{name:10s} {r['n']:6d} {pct(r['accuracy_float']):>8s} {pct(r['accuracy_int8']):>8s}")
    lines.append(f"{'all':10s} {result['n']:6d} {pct(result['accuracy_float']):>8s} {pct(result['accuracy_int8']):>8s}")
    lines.append(f"int8 and float predictions agree on {pct(result['int8_float_agreement']).strip()}% of clips")
    if result.get("per_content"):
        lines.append(f"{'unknown and silence clips by content':40s} {'n':>6s} {'float %':>8s} {'int8 %':>8s}")
        for name, r in result["per_content"].items():
            lines.append(f"  {name:38s} {r['n']:6d} {pct(r['accuracy_float']):>8s} {pct(r['accuracy_int8']):>8s}")
    return "\n".join(lines)
