"""Random-network verification campaign: RTL (Amaranth simulator) vs the golden int8 model.

    python -m ternkws.sim.campaign --cases 1000 [--start 0] [--jobs 2] [--json reports/verify.json]
    python -m ternkws.sim.campaign --stream --cases 1000 [--json reports/verify_stream.json]

`--stream`: the streaming mode (hw/streaming.py) vs the golden streaming model (golden/streaming.py):
each case a random small network (dense ternary, grouped twice, stored weights, per four cases), a
stream long enough for several decisions, a random hop and detector (sim/random_streams.py), random
back-pressure on the input and both outputs; every logit, class and event compared.

Each case is a random small network (every fourth one with stored learned 1x1 weights) (topology, seeds, density, weights, lanes), random and extreme inputs
and random valid/ready back-pressure (sim/random_networks.py). Prints how many cases ran and how many
mismatched (the only acceptable figure is 0) and exits non-zero on any mismatch.
"""

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np


def run_case(case):
    from ternkws.golden.network import forward_int
    from ternkws.sim.accelerator_pysim import run_pysim
    from ternkws.sim.random_networks import random_case

    # Per four cases: ternary iid, ternary grouped (twice), stored-weights (learned 1x1).
    kind = ("iid", "grouped", "grouped", "learned")[case % 4]
    model, config, windows = random_case(1000 + case, mixer="learned" if kind == "learned" else "ternary",
                                         pattern="grouped" if kind == "grouped" else "iid")
    stall = [0.0, 0.3, 0.6][case % 3]
    try:
        results = run_pysim(model, config, windows, seed=case, stall=stall)
    except Exception as e:  # a crash is a mismatch too, reported with its case number
        return {"case": case, "ok": False, "error": repr(e)}
    bad = []
    for n, ((logits, cls, cycles), w) in enumerate(zip(results, windows)):
        ref = forward_int(model.topology, model.int_arrays, w)
        if not np.array_equal(logits, ref) or cls != int(np.argmax(ref)):
            bad.append({"window": n, "rtl": logits.tolist(), "golden": ref.tolist()})
    return {"case": case, "ok": not bad and len(results) == len(windows), "mismatches": bad,
            "windows": len(windows), "kind": kind, "topology": model.topology.to_dict(), "lanes": [config.mixer_lanes, config.dw_lanes],
            "stall": stall}


def run_stream_case(case):
    from ternkws.sim.random_streams import run_stream_case as run

    kind = ("iid", "grouped", "grouped", "learned")[case % 4]
    stall = [0.0, 0.3, 0.6][case % 3]
    try:
        model, config, rtl, ref, diff = run(100_000 + case, mixer="learned" if kind == "learned" else "ternary",
                                            pattern="grouped" if kind == "grouped" else "iid", stall=stall)
    except Exception as e:  # a crash is a mismatch too, reported with its case number
        return {"case": case, "ok": False, "error": repr(e)}
    return {"case": case, "ok": not diff, "mismatches": diff, "windows": len(ref.logits), "events": len(ref.events),
            "kind": kind, "topology": model.topology.to_dict(), "lanes": [config.mixer_lanes, config.dw_lanes],
            "stall": stall}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the campaign summary here")
    ap.add_argument("--stream", action="store_true", help="the streaming mode against the golden streaming model")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    cases = range(args.start, args.start + args.cases)
    t0 = time.time()
    results = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        work = run_stream_case if args.stream else run_case
        desc = "random streaming networks" if args.stream else "random networks"
        for r in tqdm(pool.imap_unordered(work, cases), total=len(cases), desc=desc, unit="case"):
            results.append(r)
            if not r["ok"]:
                tqdm.write(f"MISMATCH in case {r['case']}: {r.get('error') or r['mismatches'][:1]}")
    failed = sorted(r["case"] for r in results if not r["ok"])
    windows = sum(r.get("windows", 0) for r in results)
    summary = {"cases": len(results), "windows": windows, "mismatched_cases": len(failed), "failed": failed,
               "seconds": round(time.time() - t0, 1)}
    unit = "windows"
    if args.stream:
        unit = "decisions"
        summary = {"mode": "stream", "cases": len(results), "decisions": windows,
                   "events": sum(r.get("events", 0) for r in results), "mismatched_cases": len(failed),
                   "failed": failed, "seconds": summary["seconds"]}
    print(f"{len(results)} random cases ran ({windows} {unit}), {len(failed)} mismatched"
          + (f": {failed[:20]}" if failed else "") + f" ({summary['seconds']} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
