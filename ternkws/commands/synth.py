"""`ternkws synth`: synthesize and place one RTL unit alone; resources and Fmax.

The unit (hw/units.py, built with a checkpoint's configuration) sits in hw/synth_harness.py's scan-chain
harness so that every port is kept and timed; the harness alone is synthesized too and its cost
subtracted: unit = total - harness. `--sweep` measures every unit at lanes 1, 4, 16 on the UP5K and once
wide on the ECP5-85F and writes reports/units.md + reports/units.json.
"""

import argparse
import json

from ._common import add_model_option, choices_metavar, model_help

CONFIG_NAMES = ("up5k", "ecp5")   # hw/accelerator.py CONFIGS (checked in run; tests/test_cli_grammar.py)

EXAMPLES = """
ternkws synth --unit ternary_mixer --lanes 4
ternkws synth --unit depthwise_conv --device ecp5-85f --config ecp5 --json
ternkws synth --sweep --units post_op
"""


def configure(parser):
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--unit", metavar="NAME",
                      help="the unit to measure: ternary_generator, ternary_mixer (dense, iid pattern), grouped_mixer "
                           "(one add per nonzero, grouped pattern), depthwise_conv, post_op or stored_mixer "
                           "(the stored-weights baseline)")
    what.add_argument("--sweep", action="store_true",
                      help="instead of one --unit: measure every unit (lanes 1, 4, 16 on up5k; 64 on ecp5-85f; "
                           "the up5k and ecp5 accelerator presets) and write reports/units.md and "
                           "reports/units.json (about 25 minutes on 2 cores)")
    what.add_argument("--render", action="store_true",
                      help="instead of one --unit: rewrite units.md from the units.json already in --out-dir, "
                           "without synthesizing (after changing the report's layout)")
    from ternkws.boards.toolchain import DEVICES

    parser.add_argument("--device", default="up5k", metavar=choices_metavar(DEVICES),
                        help="up5k (iCE40UP5K-SG48) or ecp5-85f (also ecp5-12f/25f/45f; aliases such as 85k); "
                             "default up5k")
    parser.add_argument("--lanes", type=int, default=None, metavar="N",
                        help="parallel lanes of the unit (default 1; must divide its channel counts)")
    parser.add_argument("--config", default=None, metavar=choices_metavar(CONFIG_NAMES),
                        help="build the unit as the accelerator preset (hw/accelerator.py) does: its lanes "
                             "and memory options (e.g. the single-port SPRAM line "
                             "buffer of depthwise_conv on up5k)")
    parser.add_argument("--freq", type=float, default=None, metavar="MHZ",
                        help="target clock for place and route (default: 12 on iCE40, 25 on ECP5); "
                             "Fmax is reported either way")
    add_model_option(parser, help="the model whose configuration the unit is built with; " + model_help())
    parser.add_argument("--checkpoint", dest="model", default=None, help=argparse.SUPPRESS)   # the old name
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of a table (stdout: the JSON alone)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep netlists, constraints, logs and nextpnr reports in DIR/total, DIR/harness")
    parser.add_argument("--timeout", type=float, default=1800, metavar="S",
                        help="limit per tool run in seconds (default 1800)")
    parser.add_argument("--out-dir", default="reports", metavar="DIR",
                        help="where --sweep writes units.md and units.json (default: reports)")
    parser.add_argument("--units", default=None, metavar="LIST",
                        help="with --sweep: measure only these units (comma-separated) and replace their "
                             "rows in the units.json already in --out-dir")


def run(args):
    from ternkws.golden.errors import UserError

    if args.sweep or args.render:
        return _sweep(args)
    if args.units:
        raise UserError("--units goes with --sweep (one unit alone: --unit NAME)")
    if args.freq is not None and not args.freq > 0:
        raise UserError(f"--freq must be positive, not {args.freq}")

    from ternkws.boards.toolchain import get_device
    from ternkws.golden import checkpoint
    from ternkws.boards.units import check, config_of, measure

    device = get_device(args.device)
    model = checkpoint.load(args.model)
    lanes, options = (1 if args.lanes is None else args.lanes), {}
    check(args.unit, lanes, model)   # argument errors before any tool runs
    if args.config:
        if args.lanes is not None:
            raise UserError("give --lanes or --config (which sets the lanes), not both")
        lanes, options = config_of(args.unit, args.config)
        options = {k: v for k, v in options.items() if v}
    from ternkws.golden.progress import Progress
    progress = Progress(prefix="ternkws synth: ")   # stderr: steps and tool phases; stdout: the result alone
    result = measure(args.unit, lanes, device, model=model, freq_mhz=args.freq, keep=args.keep,
                     timeout_s=args.timeout, log=progress.line, options=options, config=args.config,
                     progress=progress)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(format_result(result))
    return 0


def _row(label, key, r):
    cap = r["capacity"][key]
    cells = []
    for v in (r[key], r["harness"][key], r["total"][key]):
        pct = f"{100.0 * v / cap:5.1f}%" if cap else ""
        cells.append(f"{v:>7} {pct:>6}")
    return f"{label:<13}" + "".join(f"{c:>16}" for c in cells) + f"{cap:>10}"


def format_result(r):
    """The readable table of one measure() result."""
    m = r["model"]
    from ternkws.boards.units import _lanes
    lines = [f"{r['unit']}, lanes {_lanes(r)} on {r['device']} ({r['part']}), model {m['topology']} "
             f"{m['id']}, target {r['freq_mhz']:g} MHz",
             f"{'':<13}{'unit':>16}{'harness':>16}{'total':>16}{'capacity':>10}"]
    for label, key in (("logic cells", "logic_cells"), ("flip-flops", "ffs"), ("DSP", "dsp"),
                       ("BRAM", "bram"), ("SPRAM", "spram")):
        lines.append(_row(label, key, r))
    if r["capacity"].get("lutram"):
        lines.append(_row("LUT RAM", "lutram", r))
    fmax = r["fmax_mhz"]
    met = "" if fmax is None else ("meets" if fmax >= r["freq_mhz"] else "MISSES")
    lines.append(f"Fmax {fmax} MHz ({met} the {r['freq_mhz']:g} MHz target; harness alone "
                 f"{r['harness']['fmax_mhz']} MHz). unit = total - harness; harness: "
                 f"{r['ports']['in_bits']} input + {r['ports']['out_bits']} output chain bits.")
    for name, mem in r["memories"].items():
        lines.append(f"memory {name}: {mem['kind']} {mem['depth']} x {mem['width']} bit "
                     f"({mem['bits']:,} bits) -> {mem['bram_cells']} block RAM(s)")
    cp = r["total"].get("critical_path")
    if cp:
        lines.append(f"critical path {cp['delay_ns']} ns ({cp['logic_ns']} logic, {cp['routing_ns']} routing): "
                     f"{cp['from']} -> {cp['to']}")
    if r["total"].get("files"):
        lines.append(f"files: {r['total']['files']['report']} (and the harness's beside it)")
    return "\n".join(lines)


def _sweep(args):
    from pathlib import Path

    from ternkws.golden import checkpoint
    from ternkws.boards.units import format_table, render_report, sweep, write_report

    out = Path(args.out_dir)
    if args.render:
        from ternkws.golden.errors import UserError
        if not (out / "units.json").exists():
            raise UserError(f"{out / 'units.json'} does not exist: run 'ternkws synth --sweep' first")
        render_report(out / "units.json", out / "units.md")
        print(f"wrote {out / 'units.md'} from {out / 'units.json'}")
        return 0
    from ternkws.golden.errors import UserError
    from ternkws.boards.units import UNITS, _model_info, merge_sweep

    model = checkpoint.load(args.model)
    units = None
    if args.units:
        units = [u.strip() for u in args.units.split(",") if u.strip()]
        unknown = [u for u in units if u not in UNITS]
        if unknown:
            raise UserError(f"unknown unit(s) {', '.join(unknown)}; choose among {', '.join(UNITS)}")
    old = None
    if units and (out / "units.json").exists():
        old = json.loads((out / "units.json").read_text())
        merge_sweep(old, {"model": _model_info(model), "runs": []})   # a model mismatch fails before synthesis
    from ternkws.golden.progress import Progress
    progress = Progress(prefix="ternkws synth: ")   # stderr: "[n/N]" per run, the tool phases inside it
    data = sweep(model=model, freq_mhz=args.freq, timeout_s=args.timeout, units=units, log=progress.line,
                 progress=progress)
    if old is not None:
        data = merge_sweep(old, data)
    write_report(data, out / "units.md", out / "units.json")
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print(format_table(data["runs"]))
        print(f"wrote {out / 'units.md'} and {out / 'units.json'}")
    return 0
