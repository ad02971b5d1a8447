"""Random-network verification campaign: RTL (Amaranth simulator) vs the golden int8 model.

    python -m ternkws.sim.campaign --cases 1000 [--start 0] [--jobs 2] [--json reports/verify.json]

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the campaign summary here")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    cases = range(args.start, args.start + args.cases)
    t0 = time.time()
    results = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for r in tqdm(pool.imap_unordered(run_case, cases), total=len(cases), desc="random networks", unit="case"):
            results.append(r)
            if not r["ok"]:
                tqdm.write(f"MISMATCH in case {r['case']}: {r.get('error') or r['mismatches'][:1]}")
    failed = sorted(r["case"] for r in results if not r["ok"])
    windows = sum(r.get("windows", 0) for r in results)
    summary = {"cases": len(results), "windows": windows, "mismatched_cases": len(failed), "failed": failed,
               "seconds": round(time.time() - t0, 1)}
    print(f"{len(results)} random cases ran ({windows} windows), {len(failed)} mismatched"
          + (f": {failed[:20]}" if failed else "") + f" ({summary['seconds']} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
