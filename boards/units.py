"""The RTL units that `ternkws synth` measures alone, built with the configuration of a checkpoint.

`build(name, lanes, model)` builds one unit for every layer of the model's plan (the unit serves all of
them, a `layer` input selects one) from the accelerator's own records (hw/layers.py `hardware_plan`,
at `lanes` lanes), so it is the unit the accelerator instantiates (tests/test_layers.py compares their
Verilog). Layer tables are in the accelerator's pass order (a residual 1x1 before its layer's main 1x1):

    ternary_generator  leap-forward LFSR: one seed per 1x1 of the plan (residual 1x1 included)
    ternary_mixer      every 1x1 of the plan (c_in, c_out, seed), add/subtract only: the dense mixer of
                       the iid pattern (`lanes` entries per cycle, zeros included)
    grouped_mixer      the same 1x1 layers on the grouped pattern (golden/SPEC.md 1.1): one add per
                       nonzero, `lanes` = rows (adds) per cycle, 1, 2, 4 or 8
    stored_mixer       the stored-weights baseline of the same 1x1 layers (learned int8 weights in a
                       ROM, `lanes` multipliers): the checkpoint's learned weights, for a ternary
                       checkpoint those of golden/models/baseline.npz (same shapes)
    depthwise_conv     every depthwise layer (channels, kernel, dilation, int8 weights, shift)
    post_op            every layer's BN fold (mult, bias, shift, mult_res); one value per cycle, so
                       it has no lanes (lanes must be 1)

`measure()` synthesizes and places a unit inside hw/synth_harness.py's SerialHarness and the same
harness around a PassThrough of equal port widths, and reports unit = total - harness.
`sweep()` measures every unit at several lane counts and `write_report()` writes reports/units.{md,json}
(`ternkws synth --sweep` regenerates them).
"""

import json
import time
from pathlib import Path

from ternkws.golden.errors import UserError
from ternkws.golden.progress import format_seconds
from ternkws.golden.workspace import display_path, source_state

__all__ = ["UNITS", "valid_lanes", "check", "config_of", "build", "memories", "measure", "sweep", "write_report",
           "render_report", "merge_sweep", "SWEEP_UP5K_LANES", "SWEEP_WIDE", "SWEEP_CONFIGS"]

COST_KEYS = ("logic_cells", "ffs", "dsp", "bram", "spram", "lutram")


# --------------------------------------------------------------------------------------------------
# Configuration from the checkpoint: the accelerator's own records (hw/layers.py), at other lane counts

MIXER_UNITS = ("ternary_generator", "ternary_mixer", "stored_mixer", "grouped_mixer")


def unit_config(name, lanes, single_port=False, spram=False):
    """The AcceleratorConfig that builds unit `name` with `lanes` lanes (the other unit's lanes at 1,
    which does not change this unit)."""
    from ternkws.hw.layers import AcceleratorConfig
    mixer_lanes = lanes if name in MIXER_UNITS else 1
    dw_lanes = lanes if name == "depthwise_conv" else 1
    return AcceleratorConfig(f"{name}-{lanes}", mixer_lanes=mixer_lanes, dw_lanes=dw_lanes,
                             single_port_line_buffer=bool(single_port), spram=bool(spram))


def unit_plan(name, lanes, model, **options):
    """hardware_plan() of `model` for unit `name`: for the stored-weights mixer of a ternary model, the
    learned 1x1 weights of golden/models/baseline.npz when its plan has the same shapes, else seeded
    random int8 matrices of the same shapes (the ROM's size depends on the shapes only)."""
    import dataclasses

    from ternkws.hw.layers import hardware_plan
    weights = _stored_weights(model) if name == "stored_mixer" else None
    if name == "grouped_mixer" and model.topology.pattern != "grouped":
        # The same shapes and seeds on the grouped pattern: its area depends on nothing else.
        model = dataclasses.replace(model, topology=dataclasses.replace(model.topology, mixer="ternary",
                                                                        pattern="grouped"))
    return hardware_plan(model, unit_config(name, lanes, **options), mixer_weights=weights)


def _stored_weights(model):
    """{array name: int8 matrix} of every learned 1x1 the stored-weights mixer of `model` holds."""
    import numpy as np
    ints = model.int_arrays
    if model.topology.mixer != "learned":
        from ternkws.golden import checkpoint
        if checkpoint.BASELINE_MODEL.exists():
            base = checkpoint.load(checkpoint.BASELINE_MODEL)
            if [(l.c_in, l.c_out, l.residual, l.res_c_in) for l in base.plan] == \
                    [(l.c_in, l.c_out, l.residual, l.res_c_in) for l in model.plan]:
                ints = base.int_arrays
    out = {}
    rng = np.random.default_rng(0)
    for layer in model.plan:
        for key, c_in in ((f"{layer.name}.q.pw", layer.c_in), (f"{layer.name}.q.res.pw", layer.res_c_in)):
            if key.endswith(".res.pw") and not layer.residual:
                continue
            w = ints.get(key)
            out[key] = w if w is not None else rng.integers(-127, 128, (layer.c_out, c_in), dtype=np.int8)
    return out


def _ternary_generator(plan):
    from ternkws.hw.layers import make_generator
    return make_generator(plan)


def _ternary_mixer(plan):
    """The dense (iid) ternary mixer, whatever the model's pattern."""
    import dataclasses

    from ternkws.hw.layers import make_mixer
    return make_mixer(dataclasses.replace(plan, pattern="iid"), stored=False)


def _grouped_mixer(plan):
    from ternkws.hw.layers import make_mixer
    return make_mixer(plan, stored=False)


def _stored_mixer(plan):
    from ternkws.hw.layers import make_mixer
    return make_mixer(plan, stored=True)


def _depthwise_conv(plan):
    from ternkws.hw.layers import make_depthwise
    return make_depthwise(plan)


def _post_op(plan):
    from ternkws.hw.layers import make_post_op
    return make_post_op(plan)


UNITS = {
    "ternary_generator": _ternary_generator,
    "ternary_mixer": _ternary_mixer,
    "depthwise_conv": _depthwise_conv,
    "post_op": _post_op,
    "stored_mixer": _stored_mixer,
    "grouped_mixer": _grouped_mixer,
}

# What each memory of a unit holds (names as the units give them), for the report.
MEMORY_ROLES = {
    ("ternary_mixer", "unit.frames"): "the input frame buffer: two frames of c_in int8 activations "
                                      "(double-buffered), no weights",
    ("stored_mixer", "unit.frames"): "the input frame buffer: two frames of c_in int8 activations",
    ("grouped_mixer", "unit.frames"): "the input frame buffer: two frames of c_in int8 activations in "
                                      "words of one group (M = 3 int8), no weights",
    ("stored_mixer", "unit.generator.rom"): "the learned int8 1x1 weights of every layer (ROM)",
    ("depthwise_conv", "unit.line_buffer"): "the line buffer: the last (K-1)*dil+2 input frames of "
                                            "int8 activations",
    ("depthwise_conv", "unit.weights"): "the learned int8 depthwise weights of every layer (ROM)",
    ("post_op", "unit.consts"): "per-channel BN multiplier and bias (rounding folded in) of every layer (ROM)",
    ("post_op", "unit.mult_res"): "per-channel residual BN multiplier of the residual layers (ROM)",
}


def valid_lanes(name, model):
    """The lane counts unit `name` accepts with this model: divisors of every channel count it streams
    (the generator has the mixer's, since it feeds it); post_op has none (1)."""
    from ternkws.hw.layers import schedule
    if name == "post_op":
        return [1]
    if name == "grouped_mixer":
        from ternkws.hw.grouped_mixer import ADDS
        return list(ADDS)
    if name in MIXER_UNITS:
        counts = [p.c_in for p in schedule(model)]
    elif name == "depthwise_conv":
        counts = [p.c_in for p in schedule(model) if p.dw >= 0]
    else:
        raise UserError(f"unknown unit {name!r}; choose one of {', '.join(UNITS)}")
    limit = min(counts)
    return [n for n in range(1, limit + 1) if all(c % n == 0 for c in counts)]


def check(name, lanes, model):
    """UserError, naming the valid choices, for an unknown unit or lanes the unit cannot take."""
    if name not in UNITS:
        raise UserError(f"unknown unit {name!r}; choose one of {', '.join(UNITS)}")
    choices = valid_lanes(name, model)
    if lanes not in choices:
        why = "it handles one value per cycle" if name == "post_op" else \
            f"lanes must divide every channel count it streams ({model.topology.name} model)"
        raise UserError(f"{name} cannot take {lanes} lanes: {why}; valid: {', '.join(map(str, choices))}")


def config_of(name, config):
    """(lanes, options) of unit `name` as the accelerator preset `config` (hw/accelerator.py CONFIGS:
    'up5k', 'ecp5') instantiates it; UserError for an unknown preset."""
    from ternkws.hw.layers import CONFIGS
    if config not in CONFIGS:
        raise UserError(f"unknown accelerator configuration {config!r}; choose one of {', '.join(CONFIGS)}")
    cfg = CONFIGS[config]
    if name == "depthwise_conv":
        return cfg.dw_lanes, {"single_port": cfg.single_port_line_buffer, "spram": cfg.spram}
    if name == "post_op":
        return 1, {}
    if name == "grouped_mixer":
        from ternkws.hw.layers import grouped_adds
        return grouped_adds(cfg), {}
    return cfg.mixer_lanes, {}


def build(name, lanes, model=None, **options):
    """Unit `name` with `lanes` lanes for `model` (default: the bundled checkpoint); check() first.
    `options`: depthwise_conv's single_port / spram (line buffer in a single-port RAM, in SPRAM)."""
    if model is None:
        from ternkws.golden import checkpoint
        model = checkpoint.load()
    check(name, lanes, model)
    try:
        return UNITS[name](unit_plan(name, lanes, model, **options))
    except (TypeError, ValueError) as e:
        raise UserError(f"{name} with {lanes} lanes: {e}") from None


def memories(component):
    """Every Amaranth memory inside `component`: {hierarchical name: {width, depth, bits, kind}}, kind
    'ROM' (no write port: initialized at elaboration) or 'RAM'. Names start at the unit ('unit.x')."""
    from amaranth.hdl import Fragment

    out = {}

    def walk(fragment, path):
        data = getattr(fragment, "_data", None)
        if data is not None and hasattr(data, "depth"):
            width = _shape_width(data.shape)
            writes = len(getattr(fragment, "_write_ports", ()))
            out[".".join(path)] = {"width": width, "depth": data.depth, "bits": width * data.depth,
                                   "kind": "RAM" if writes else "ROM",
                                   "read_ports": len(getattr(fragment, "_read_ports", ())),
                                   "write_ports": writes}
        for sub, name, *_ in fragment.subfragments:
            walk(sub, path + (str(name),))

    walk(Fragment.get(component, None), ("unit",))
    return out


def _shape_width(shape):
    from amaranth.hdl import Shape
    return Shape.cast(shape).width


# --------------------------------------------------------------------------------------------------
# Measuring

_HARNESS_CACHE = {}


def measure(name, lanes, device, *, model=None, freq_mhz=None, keep=None, timeout_s=1800, log=None,
            options=None, config=None, progress=None):
    """Synthesize and place unit `name` in a SerialHarness on `device`, and the harness alone around a
    PassThrough of the same widths. Returns {unit: cost (total - harness), total, harness, ...}.
    progress: a golden.progress.Progress for the yosys / nextpnr phases (boards/toolchain.synthesize)."""
    from ternkws.boards.toolchain import ToolchainError, get_device, synthesize
    from ternkws.hw.synth_harness import PassThrough, SerialHarness

    device = get_device(device)
    if model is None:
        from ternkws.golden import checkpoint
        model = checkpoint.load()
    options = dict(options or {})
    unit = build(name, lanes, model, **options)
    mems = memories(unit)
    # memories() elaborated a throwaway copy; synthesis needs a fresh unit.
    harness = SerialHarness(build(name, lanes, model, **options))
    keep = Path(keep) if keep else None
    say = log or (lambda msg: None)

    say(f"{name}, {lanes} lane(s), {device.name}: harness + unit ({harness.in_width} in, "
        f"{harness.out_width} out bits)")
    try:
        total = synthesize(harness, device, "top", None, freq_mhz, keep / "total" if keep else None,
                           timeout_s=timeout_s, timing_allow_fail=True, progress=progress)
    except ToolchainError as e:
        e.partial["unit_memories"] = mems
        raise
    key = (device.name, harness.in_width, harness.out_width, total["freq_mhz"])
    if key in _HARNESS_CACHE and not keep:
        base = _HARNESS_CACHE[key]
    else:
        say(f"{name}: harness alone (PassThrough of the same widths)")
        base = synthesize(SerialHarness(PassThrough(harness.in_width, harness.out_width)), device, "top",
                          None, freq_mhz, keep / "harness" if keep else None, timeout_s=timeout_s,
                          timing_allow_fail=True, progress=progress)
        _HARNESS_CACHE[key] = base
    r = _result(name, lanes, device, model, harness, total, base, mems)
    r["config"], r["options"] = config, options
    return r


def _figures(r):
    keys = COST_KEYS + ("io", "fmax_mhz", "freq_mhz", "timing_met", "critical_path", "memories", "spram_memories",
                        "huge_memories_uninitialized", "yosys_cells", "seconds", "files")
    return {k: r[k] for k in keys if k in r}


def _model_info(model):
    """id, topology and path (relative to the checkout when inside it, else the file name) of a model."""
    return {"id": model.model_id, "topology": model.topology.name,
            "path": display_path(model.path) if model.path else None}


def _result(name, lanes, device, model, harness, total, base, mems):
    unit_cost = {k: total[k] - base[k] for k in COST_KEYS}
    cap = dict(total["capacity"])
    # Which Amaranth memory each block RAM cell implements (names from the yosys netlist).
    def by_memory(cells):
        out = {}
        for cell_name, count in cells.items():
            mem_name = next((m for m in mems if cell_name == m or cell_name.endswith(m)), cell_name)
            out[mem_name] = out.get(mem_name, 0) + count
        return out
    bram_map = by_memory(total.get("memories", {}))
    spram_map = by_memory(total.get("spram_memories", {}))
    return {
        "unit": name, "lanes": lanes, "device": device.name, "part": device.part,
        "model": _model_info(model),
        **unit_cost,
        "fmax_mhz": total["fmax_mhz"], "freq_mhz": total["freq_mhz"],
        "capacity": cap,
        "cost": "unit = total - harness (the harness alone: SerialHarness around a PassThrough of the same port widths)",
        "ports": {"in_bits": harness.in_width, "out_bits": harness.out_width,
                  "inputs": [[p, w] for p, _, w in harness.inputs],
                  "outputs": [[p, w] for p, _, w in harness.outputs]},
        "memories": {k: {**v, "bram_cells": bram_map.get(k, 0), "spram_cells": spram_map.get(k, 0)}
                     for k, v in mems.items()},
        "bram_cells": bram_map,
        "total": _figures(total), "harness": _figures(base),
        "tools": total["tools"],
    }


# --------------------------------------------------------------------------------------------------
# The report (reports/units.md, reports/units.json)

SWEEP_UP5K_LANES = (1, 4, 16)
SWEEP_WIDE = ("ecp5-85f", 64)     # one wide setting on the ECP5-85F (lanes = a whole 64-channel frame)
SWEEP_CONFIGS = (("up5k", "up5k"), ("ecp5", "ecp5-85f"))   # accelerator presets and their devices


def sweep(model=None, up5k_lanes=SWEEP_UP5K_LANES, wide=SWEEP_WIDE, units=None, freq_mhz=None,
          timeout_s=1800, log=print, configs=SWEEP_CONFIGS, progress=None):
    """measure() every unit at `up5k_lanes` on up5k, once at `wide` = (device, lanes), and as each
    accelerator preset of `configs` instantiates it (unless that is a run already made); lanes a unit
    cannot take are clamped to its largest valid count <= the request (post_op: 1, measured once per
    device). A configuration that does not fit is recorded with the tool's message.
    log: one line as each run starts and ends ("[3/20] ...", with the sweep's elapsed time); progress:
    a golden.progress.Progress for the tool phases inside each run."""
    from ternkws.boards.toolchain import ToolchainError

    if model is None:
        from ternkws.golden import checkpoint
        model = checkpoint.load()
    source = _source()      # the checkout the units are built from (before the long synthesis runs)
    todo = []     # (unit, device, lanes, options, preset), in the order they run
    for name in units or UNITS:
        choices = valid_lanes(name, model)
        plan = []     # (device, lanes, options, preset)
        for device, lane_set in (("up5k", up5k_lanes), (wide[0], (wide[1],))):
            for lanes in lane_set:
                ok = max(c for c in choices if c <= lanes)
                if not any(p[:3] == (device, ok, {}) for p in plan):
                    plan.append((device, ok, {}, None))
        for preset, device in configs or ():
            lanes, options = config_of(name, preset)
            options = {k: v for k, v in options.items() if v}
            same = next((p for p in plan if p[:3] == (device, lanes, options)), None)
            if same is None:
                plan.append((device, lanes, options, preset))
            elif same[3] is None:
                plan[plan.index(same)] = (*same[:3], preset)
        todo += [(name, *p) for p in plan]
    runs, t_sweep = [], time.monotonic()
    for n, (name, device, lanes, options, preset) in enumerate(todo, 1):
        t0 = time.monotonic()
        step = f"[{n}/{len(todo)}]"
        if log:
            log(f"{step} {name}, lanes {lanes}, {device}" + (f", {preset} preset" if preset else "")
                + f" (sweep {format_seconds(t0 - t_sweep)} so far)")
        try:
            r = measure(name, lanes, device, model=model, freq_mhz=freq_mhz, timeout_s=timeout_s, log=log,
                        options=options, config=preset, progress=progress)
        except ToolchainError as e:
            partial = dict(e.partial)
            r = {"unit": name, "lanes": lanes, "device": device, "config": preset, "options": options,
                 "error": e.summary, "memories": partial.pop("unit_memories", {}), "log_tail": e.log_tail,
                 "partial": partial}
        r["seconds"] = round(time.monotonic() - t0, 1)
        if log:
            left = len(todo) - n
            log(f"{step} {_one_line(r)} in {format_seconds(r['seconds'])}; sweep "
                f"{format_seconds(time.monotonic() - t_sweep)}" + (f", {left} run(s) left" if left else ", done"))
        runs.append(r)
    return {"model": _model_info(model), "source": source, "runs": runs}


def _source():
    """The checkout the units were built from: commit, and the hw/ and golden/ files that differed from
    it. Empty for an installed copy (no git is run outside a source checkout)."""
    return source_state("hw", "golden")


def merge_sweep(old, new):
    """`old` sweep data with the runs of the units measured in `new` replaced (units in UNITS order).
    UserError when the two were made with different models."""
    if old.get("model", {}).get("id") != new["model"]["id"]:
        raise UserError(f"the existing report was made with model {old.get('model', {}).get('id')}, this "
                        f"sweep with {new['model']['id']}: run the whole sweep (without --units)")
    redone = {r["unit"] for r in new["runs"]}
    # each run keeps the checkout it was measured from
    runs = [{"source": old.get("source"), **r} for r in old["runs"] if r["unit"] not in redone]
    runs += [{"source": new.get("source"), **r} for r in new["runs"]]
    order = {name: n for n, name in enumerate(UNITS)}
    runs.sort(key=lambda r: order.get(r["unit"], len(order)))   # stable: a unit's runs keep their order
    return {**old, **{k: v for k, v in new.items() if k != "runs"}, "runs": runs}


def _lanes(r):
    """'8' or '2, up5k preset (single_port, spram)': the lanes and the accelerator preset of a run."""
    text = str(r["lanes"])
    if r.get("config"):
        opts = [k for k, v in (r.get("options") or {}).items() if v]
        text += f", {r['config']} preset" + (f" ({', '.join(opts)})" if opts else "")
    return text


def _pct(v, cap):
    return f"{100.0 * v / cap:.1f}%" if cap else "-"


def _one_line(r):
    if "error" in r:
        return f"{r['unit']:18} {r['lanes']:3} {r['device']:9} FAILED: {r['error']}"
    return (f"{r['unit']:18} {r['lanes']:3} {r['device']:9} LC {r['logic_cells']:6} FF {r['ffs']:6} "
            f"DSP {r['dsp']:3} BRAM {r['bram']:3} SPRAM {r['spram']} Fmax {r['fmax_mhz']} MHz")


def _failure(r):
    """'does not fit: ICESTORM_DSP 16/8 (yosys: ...)' or the tool's error, for a table cell."""
    over = r.get("partial", {}).get("overused")
    if over:
        text = "does not fit: " + ", ".join(f"{c} {u}/{a}" for c, (u, a) in over.items())
    else:
        text = "failed: " + r["error"]
    cells = r.get("partial", {}).get("yosys_cells")
    if cells:
        text += " (yosys, total with harness: " + ", ".join(f"{n} {c}" for c, n in cells.items()) + ")"
    return text


def format_table(results):
    """Markdown table of measure() results: unit cost, harness, total, against capacity, Fmax."""
    lines = ["| unit | lanes | device | LC (unit) | FF | DSP | BRAM | SPRAM | LC total | LC harness | "
             "Fmax MHz |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['unit']} | {_lanes(r)} | {r['device']} | {_failure(r)} | | | | | | | |")
            continue
        cap = r["capacity"]
        lines.append(
            f"| {r['unit']} | {_lanes(r)} | {r['device']} | {r['logic_cells']} ({_pct(r['logic_cells'], cap['logic_cells'])}) "
            f"| {r['ffs']} | {r['dsp']}/{cap['dsp']} | {r['bram']}/{cap['bram']} | {r['spram']}/{cap['spram']} "
            f"| {r['total']['logic_cells']} ({_pct(r['total']['logic_cells'], cap['logic_cells'])}) "
            f"| {r['harness']['logic_cells']} | {r['fmax_mhz']:.1f} |")
    return "\n".join(lines)


def write_report(data, md_path, json_path):
    """reports/units.md + reports/units.json from sweep()'s result."""
    md_path, json_path = Path(md_path), Path(json_path)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    runs = data["runs"]
    for r in runs:  # work folders of a sweep are temporary
        for part in ("total", "harness"):
            if part in r:
                r[part].pop("files", None)
    json_path.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
    md_path.write_text(_markdown(data))


BRAM_BITS = {False: 4096, True: 18432}   # iCE40 EBR (SB_RAM40_4K), ECP5 DP16KD
UP5K_FMAX_TARGET = 24.0                  # DESIGN.md: the default model on the UP5K at >= 24 MHz


def render_report(json_path, md_path):
    """Rewrite units.md from an existing units.json (no synthesis)."""
    data = json.loads(Path(json_path).read_text())
    Path(md_path).write_text(_markdown(data))


def _findings(runs):
    """Markdown lines: what a reader should notice (generated from the figures, so it stays true)."""
    lines = []
    for r in runs:
        where = f"{r['unit']}, lanes {_lanes(r)}, {r['device']}"
        if "error" in r:
            lines.append(f"- {where}: {_failure(r).split(' (yosys')[0]}.")
            continue
        if r["device"] == "up5k" and r["fmax_mhz"] is not None and r["fmax_mhz"] < UP5K_FMAX_TARGET:
            cp = r["total"].get("critical_path") or {}
            lines.append(f"- {where}: Fmax {r['fmax_mhz']:.1f} MHz is below the {UP5K_FMAX_TARGET:g} MHz UP5K "
                         f"target (critical path {cp.get('delay_ns')} ns, {cp.get('logic_steps')} logic steps, "
                         f"`{cp.get('from')}` -> `{cp.get('to')}`).")
        for name, mem in r["memories"].items():
            cells = mem["bram_cells"]
            if cells >= 2 and mem["bits"] < 0.5 * cells * BRAM_BITS[r["device"].startswith("ecp5")]:
                lines.append(f"- {where}: `{name}` ({mem['depth']} x {mem['width']} bit, {mem['bits']:,} bits) "
                             f"takes {cells} BRAM: the word width, not the size, sets the count.")
    return lines or ["- nothing out of the ordinary."]


def _rom_bits(r):
    return sum(m["bits"] for m in r.get("memories", {}).values() if m["kind"] == "ROM")


def _mixer_comparison(runs):
    """Markdown lines: the DESIGN.md target (mixer: 0 DSP, 0 weight memory bits) checked on every
    ternary_mixer run, and ternary vs stored mixer at equal lanes and device."""
    lines = []
    for r in runs:
        if r["unit"] != "ternary_mixer" or "error" in r:
            continue
        ok = r["dsp"] == 0 and _rom_bits(r) == 0
        held = ", ".join(f"{n} ({m['kind']}, {m['bits']:,} bits)" for n, m in r["memories"].items()) or "none"
        lines.append(f"- ternary_mixer, lanes {_lanes(r)}, {r['device']}: {r['dsp']} DSP, {_rom_bits(r)} "
                     f"weight (ROM) bits -> {'PASS' if ok else 'FAIL'}; memories: {held}")
    lines += ["", "| lanes | device | ternary LC | ternary DSP | ternary BRAM | ternary weight bits | "
                  "stored LC | stored DSP | stored BRAM | stored weight bits |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by = {(r["unit"], r["lanes"], r["device"]): r for r in runs}
    for (unit, lanes, device), t in by.items():
        if unit != "ternary_mixer":
            continue
        st = by.get(("stored_mixer", lanes, device))
        if st is None:
            continue

        def cells(r):
            if "error" in r:
                return [_failure(r).split(" (yosys")[0], "", "", f"{_rom_bits(r):,}" if r.get("memories") else ""]
            return [str(r["logic_cells"]), str(r["dsp"]), str(r["bram"]), f"{_rom_bits(r):,}"]
        row = [str(lanes), device, *cells(t), *cells(st)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _source_lines(data):
    """'Source: commit X.' (per group of units when a partial sweep re-measured some)."""
    groups = {}
    for r in data["runs"]:
        src = r.get("source") or data.get("source") or {}
        key = (src.get("commit"), tuple(src.get("modified") or ()))
        groups.setdefault(key, [])
        if r["unit"] not in groups[key]:
            groups[key].append(r["unit"])
    if not groups or groups.keys() == {(None, ())}:
        return []
    parts = []
    for (commit, modified), units in groups.items():
        text = f"commit {commit}" + (f" with local changes in {', '.join(modified)}" if modified else "")
        parts.append(text + (f" ({', '.join(units)})" if len(groups) > 1 else ""))
    return ["Source: " + "; ".join(parts) + ".", ""]


def _markdown(data):
    runs = data["runs"]
    ok = [r for r in runs if "error" not in r]
    tools = ok[0]["tools"] if ok else {}
    m = data["model"]
    out = [
        "# Unit resources and Fmax (each unit synthesized and placed alone)",
        "",
        f"Model: `{m['path']}` ({m['topology']}, model id {m['id']}). Tools: {tools.get('yosys', '?')}, "
        f"{tools.get('nextpnr', '?')} (YoWASP); iCE40: `synth_ice40 -dsp`, ECP5: `synth_ecp5`; nextpnr "
        "default seed, Fmax post-route.",
        "",
        *_source_lines(data),
        "Regenerate: `ternkws synth --sweep` (writes this file and reports/units.json). One unit: "
        "`ternkws synth --unit NAME --device up5k --lanes N [--json]`.",
        "",
        "Method: a unit has more port bits than the chip has pins, so it sits in `hw/synth_harness.py`'s "
        "SerialHarness (a scan chain: every input port bit from a shift register loaded through one pin, "
        "every output port bit captured into a shift register read out through one pin). The same "
        "harness around a PassThrough of equal port widths gives the harness's own cost; **LC, FF, DSP, "
        "BRAM, SPRAM of the unit = total - harness**. Fmax is the whole design's (unit + harness; the "
        "harness paths are one LUT deep). Percentages are of the device (UP5K: 5,280 LC, 8 DSP, 30 EBR, "
        "4 SPRAM; ECP5-85F: 83,640 LUT4, 156 MULT18X18D, 208 DP16KD). On ECP5 'LC' is TRELLIS_COMB "
        "(LUT4s and carry halves).",
        "",
        format_table(runs),
        "",
        "## Harness cost",
        "",
        "| unit | lanes | device | in bits | out bits | harness LC | harness FF | harness Fmax MHz |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in ok:
        h = r["harness"]
        out.append(f"| {r['unit']} | {_lanes(r)} | {r['device']} | {r['ports']['in_bits']} | "
                   f"{r['ports']['out_bits']} | {h['logic_cells']} | {h['ffs']} | {h['fmax_mhz']:.1f} |")
    out += ["", "## What each memory holds", ""]
    for r in ok:
        if not r["memories"]:
            continue
        desc = []
        for name, mem in r["memories"].items():
            role = MEMORY_ROLES.get((r["unit"], name), "")
            if mem["bram_cells"]:
                fill = 100.0 * mem["bits"] / (mem["bram_cells"] * BRAM_BITS[r["device"].startswith("ecp5")])
                where = f"{mem['bram_cells']} BRAM ({fill:.0f}% of their bits)"
            elif mem.get("spram_cells"):
                fill = 100.0 * mem["bits"] / (mem["spram_cells"] * 262144)
                where = f"{mem['spram_cells']} SPRAM ({fill:.0f}% of its bits; not initialized)"
            else:
                where = "0 BRAM (LUT RAM / logic)"
            desc.append(f"`{name}` {mem['kind']} {mem['depth']} x {mem['width']} bit "
                        f"({mem['bits']:,} bits) -> {where}" + (f": {role}" if role else ""))
        out.append(f"- {r['unit']}, lanes {_lanes(r)}, {r['device']}: " + "; ".join(desc))
    out += ["", "## Critical paths", ""]
    for r in ok:
        cp = r["total"].get("critical_path") or {}
        if cp:
            out.append(f"- {r['unit']}, lanes {_lanes(r)}, {r['device']}: {cp['delay_ns']} ns "
                       f"({cp['logic_ns']} logic, {cp['routing_ns']} routing, {cp['logic_steps']} logic steps) "
                       f"from `{cp['from']}` to `{cp['to']}`")
    failed = [r for r in runs if "error" in r]
    if failed:
        out += ["", "## Configurations that did not build", ""]
        for r in failed:
            out.append(f"- {r['unit']}, lanes {_lanes(r)}, {r['device']}: {r['error']}")
    out += ["", "## Ternary mixer against the stored-weights baseline", "", *_mixer_comparison(runs)]
    out += ["", "## Findings", "", *_findings(runs)]
    if data.get("notes"):
        out += ["", "## Notes", "", *data["notes"]]
    return "\n".join(out) + "\n"
