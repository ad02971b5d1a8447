"""`ternkws infer`: golden int8 prediction (keyword, confidence, float-vs-int8 agreement) per WAV clip.

A clip no longer than the window (features.n_samples: 20,720 samples, 1.295 s) is fitted to it and
classified once (golden/SPEC.md section 3). A longer one is never cropped: it runs through the golden
streaming model with the default detector (golden/streaming.py, what `ternkws listen` does), and its
detections are reported instead of one class.
"""

import json

from ._common import EXIT_USER_ERROR, accuracy_line, add_model_option, error_line, expected_label, summarize_bad

EXAMPLES = """
ternkws infer golden/samples/*.wav
ternkws infer --model baseline --json golden/samples/yes.wav
ternkws infer --model my-model.npz clip.wav long-recording.wav
"""


def configure(parser):
    parser.add_argument("wavs", nargs="+", metavar="WAV", help="16 kHz mono WAV clips, 8-32-bit PCM or float (a bad one is "
                        "reported and skipped; exit status 2 at the end); a clip longer than the 1.3-s window "
                        "is streamed and its detections reported (as `ternkws listen` does)")
    add_model_option(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (refused clips carry an \"error\") on stdout")


def describe(model):
    kind = "TRAINED" if model.trained else "RANDOM-WEIGHTS PLACEHOLDER (predictions meaningless)"
    return (f"model {model.path} [{kind}] id {model.model_id}: {model.topology.name} "
            f"{model.topology.mixer} 1x1, density {model.topology.density:.3f}; "
            f"{model.meta.get('description', '')}")


def run(args):
    from ternkws.golden.audio import read_wav
    from ternkws.golden.checkpoint import load
    from ternkws.golden.errors import UserError
    from ternkws.golden.pipeline import clip_features, predict_features

    model = load(args.model)
    results, failed = [], 0
    if not args.json:
        print(describe(model))
    for path in args.wavs:
        try:
            samples = read_wav(path, model.features.sample_rate)
        except UserError as e:
            failed += 1
            results.append({"file": path, "error": str(e)})
            error_line("infer", e)
            continue
        if len(samples) > model.features.n_samples:
            results.append(_stream(model, path, samples, args.json))
            continue
        p = predict_features(model, *clip_features(model, samples))
        expected = expected_label(path, model.labels)
        results.append({"file": path, "class": p.label, "expected": expected, "confidence": round(p.confidence, 4),
                        "float_class": p.label_float, "agree": p.agree,
                        "logits_int8": [int(v) for v in p.logits_int]})
        if not args.json:
            verdict = "" if expected is None else f"  expected {expected:8s} {'right' if p.label == expected else 'WRONG'}"
            print(f"{path}: {p.label:8s} confidence {p.confidence:.3f}  float: {p.label_float:8s} "
                  f"{'agree' if p.agree else 'DISAGREE'}{verdict}")
    if args.json:
        print(json.dumps({"model": str(model.path), "model_id": model.model_id, "trained": model.trained,
                          "clips": results}, indent=1))
    elif len(args.wavs) > 1:
        ok = [r for r in results if "error" not in r and not r.get("streamed")]
        long = [r for r in results if r.get("streamed")]
        agree = sum(r["agree"] for r in ok)
        right = accuracy_line([(r["expected"], r["class"]) for r in ok])
        print(f"{len(ok)} clip(s) classified, float and int8 agree on {agree}/{len(ok)}"
              + (f"; {right}" if right else "")
              + (f"; {len(long)} long file(s) streamed, {sum(len(r['detections']) for r in long)} detection(s)"
                 if long else "") + (f", {failed} failed" if failed else ""))
    summarize_bad("infer", [r for r in results if "error" in r], len(args.wavs))
    return EXIT_USER_ERROR if failed else 0


def _stream(model, path, samples, quiet):
    """A clip longer than the window: the golden streaming model and the default detector (as
    `ternkws listen --golden` with its defaults); each detection is printed as it is found."""
    from ternkws.golden.streaming import Listener

    from .listen import detection_line, listen_samples, summary_text

    f = model.features
    listener = Listener(model)
    if not quiet:
        print(f"{path}: {len(samples) / f.sample_rate:.2f} s, longer than the {f.n_samples / f.sample_rate:.3f}-s "
              f"window: streaming it (golden streaming model, default detector; see `ternkws listen`)", flush=True)
    on_det = None if quiet else (lambda d: print(detection_line(path, d), flush=True))
    dets = listen_samples(listener, samples, on_det)
    if not quiet:
        print(f"{path}: {summary_text(dets)}", flush=True)
    return {"file": path, "streamed": True, "seconds": round(len(samples) / f.sample_rate, 3),
            "expected": expected_label(path, model.labels), "detections": [d.to_dict() for d in dets]}
