"""`ternkws infer`: golden int8 prediction (keyword, confidence, float-vs-int8 agreement) per WAV clip."""

import json

from ._common import EXIT_USER_ERROR, accuracy_line, add_model_option, error_line, expected_label, summarize_bad

EXAMPLES = """
ternkws infer golden/samples/*.wav
ternkws infer --model baseline --json golden/samples/yes.wav
ternkws infer --model my-model.npz clip.wav
"""


def configure(parser):
    parser.add_argument("wavs", nargs="+", metavar="WAV", help="16 kHz mono WAV clips, 8-32-bit PCM or float (a bad one is "
                        "reported and skipped; exit status 2 at the end)")
    add_model_option(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (refused clips carry an \"error\") on stdout")


def describe(model):
    kind = "TRAINED" if model.trained else "RANDOM-WEIGHTS PLACEHOLDER (predictions meaningless)"
    return (f"model {model.path} [{kind}] id {model.model_id}: {model.topology.name} "
            f"{model.topology.mixer} 1x1, density {model.topology.density:.3f}; "
            f"{model.meta.get('description', '')}")


def run(args):
    from ternkws.golden.checkpoint import load
    from ternkws.golden.pipeline import predict_wav
    from ternkws.golden.errors import UserError

    model = load(args.model)
    results, failed = [], 0
    if not args.json:
        print(describe(model))
    for path in args.wavs:
        try:
            p = predict_wav(model, path)
        except UserError as e:
            failed += 1
            results.append({"file": path, "error": str(e)})
            error_line("infer", e)
            continue
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
        ok = [r for r in results if "error" not in r]
        agree = sum(r["agree"] for r in ok)
        right = accuracy_line([(r["expected"], r["class"]) for r in ok])
        print(f"{len(ok)} clip(s) classified, float and int8 agree on {agree}/{len(ok)}"
              + (f"; {right}" if right else "") + (f", {failed} failed" if failed else ""))
    summarize_bad("infer", [r for r in results if "error" in r], len(args.wavs))
    return EXIT_USER_ERROR if failed else 0
