"""Per-module resources of a placed design: which part of the hierarchy each logic cell belongs to.

    breakdown(routed, netlist=None, family="ice40")  -> dict (see below)
    breakdown_markdown(bd, total_lc=None)            -> markdown lines of the table

Method
------
nextpnr's `--write` netlist (routed.json) holds every placed cell: ICESTORM_LC / ICESTORM_RAM /
ICESTORM_DSP / ICESTORM_SPRAM on iCE40, TRELLIS_COMB / TRELLIS_FF / DP16KD / MULT18X18D / TRELLIS_RAMW
on ECP5. yosys flattens the design but keeps hierarchical names (`top.core.link.parser.crc_...`), and
Amaranth's `$scopeinfo` cells in the yosys netlist list every module instance with the file and line
of the elaborate() that built it (`module_src`). Each placed cell is attributed so:

1. anchors, by source line. A cell whose yosys `src` attribute names a Python line (registers, DSPs,
   and the LUTs packed with a register) belongs to the instance built by the class holding that line;
   where that class builds several instances (three Regroups, two MemoryReaders), to the one nearest
   the instance its name says (tree distance); of several as near, to the one the named net reaches
   in the yosys netlist (a flattened net keeps all its names: `accelerator.o__payload$51` is also
   `to_mixer.o__payload`); else the name's. This fixes the nets that cross a
   module boundary and keep one side's name: `executor.payload__payload` is a parser register,
   `accelerator.o__payload` the classifier's accumulator.
2. anchors, by name. Registers, memories, DSPs and I/O cells without a source line belong to the
   deepest instance whose path prefixes their name (a memory is not an instance: `...post.consts.0.0_RAM`
   is `post`'s; the I/O buffers are one `pins` row).
3. fanout. Every other cell -- a LUT or carry without a source line, nextpnr's own feed-in cells --
   belongs where its output goes: the instance most of the cells it drives belong to, repeated until
   nothing changes. Logic counts for the register, memory, DSP or pin it computes for. A cell whose
   output reaches nothing placed takes its name's instance, else that of most connected cells, else
   an `unattributed` row; the packer's constant drivers go to the root.

Every placed cell lands in exactly one row, so the rows add up to nextpnr's totals (`check`). A
register of a class built several times (Regroup) that Amaranth names after the parent's signal it
drives, with no other name to tell the instance, stays with the parent: the 64-bit output register of
the accelerator's to_mixer Regroup counts in the accelerator's own figure. The
uncertainty is the logic at module boundaries, which synthesis merges across them: a multiplexer a
module computes for its neighbour's register counts for the neighbour (the executor's reply-byte
multiplexer counts for the encoder's CRC and uart_tx's shift register). `logic_cells_by_name` bounds
it: the same count with every LUT and carry placed by its name instead (ABC names a LUT after any net
it touches, often across a boundary, and the choice changes from one synthesis run to the next: the
fanout rule's figures are the stable ones, a module the design change did not touch keeps its count to
within a few cells). `placed_elsewhere_by_name` says how many cells the two rules place differently.
"""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["breakdown", "breakdown_markdown", "RESOURCES", "CELL_KINDS"]

RESOURCES = ("logic_cells", "ffs", "bram", "dsp", "spram", "lutram")

# cell type -> resource (ffs on iCE40 are the LCs whose flip-flop is used, counted separately)
CELL_KINDS = {
    "ice40": {"ICESTORM_LC": "logic_cells", "ICESTORM_RAM": "bram", "ICESTORM_DSP": "dsp",
              "ICESTORM_SPRAM": "spram"},
    "ecp5": {"TRELLIS_COMB": "logic_cells", "TRELLIS_FF": "ffs", "DP16KD": "bram", "PDPW16KD": "bram",
             "MULT18X18D": "dsp", "TRELLIS_RAMW": "lutram"},
}
_CONSTANT_NETS = re.compile(r"^\$PACKER_(GND|VCC)|^\$(PACKER_)?(GND|VCC)_NET$|\$glb_|^\$gbuf")
_CONSTANT_DRIVER = re.compile(r"^\$PACKER_(GND|VCC)(_DRV)?$")
FANOUT_ROUNDS = 64


def _load(thing):
    if thing is None or isinstance(thing, dict):
        return thing
    with open(thing) as f:
        return json.load(f)


def _top_module(netlist):
    mods = netlist["modules"]
    for name, mod in mods.items():
        if str(mod.get("attributes", {}).get("top", "0")).strip("0") != "":
            return mod
    return next(iter(mods.values())) if len(mods) == 1 else mods.get("top") or next(iter(mods.values()))


def _sources(src):
    """The Python (file, line) pairs named in a yosys `src` attribute ('a.py:12|b.v:3.4-5.6' ->
    [('a.py', 12)]; a range 'a.py:12.3-14.5' gives its first line)."""
    out = []
    for part in str(src or "").split("|"):
        m = re.match(r"^(.*\.py):(\d+)", part)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def _short(path):
    """'/x/y/ternkws/hw/post_op.py' -> 'hw/post_op.py'; an Amaranth file -> 'amaranth/lib/fifo.py'."""
    if not path:
        return ""
    parts = Path(path).parts
    for anchor in ("hw", "boards", "amaranth"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i:])
    return Path(path).name


def _scopes(netlist, cell_names):
    """{path: (module file, line) or None}: every module instance (from $scopeinfo cells), the root ''
    included; the I/O buffer instances (pin_*) are one 'pins' instance. Without a yosys netlist, every
    dotted prefix of the cell names stands in (no files)."""
    scopes = {"": None}
    if netlist is not None:
        for name, cell in _top_module(netlist).get("cells", {}).items():
            if cell.get("type") == "$scopeinfo":
                name = name.lstrip("\\")
                name = PINS if name.startswith("pin_") else name
                src = _sources(cell.get("attributes", {}).get("module_src"))
                scopes[name] = None if name == PINS else (src[0] if src else None)
        if len(scopes) > 1:
            return scopes
    for name in cell_names:
        parts = _fold(name).split(".")
        for i in range(1, len(parts)):
            scopes.setdefault(".".join(parts[:i]), None)
    return scopes


PINS = "pins"


def _fold(name):
    """Names under an I/O buffer instance ('pin_led_0.buf...') as under the one 'pins' instance."""
    return PINS + name[name.index("."):] if name.startswith("pin_") and "." in name else \
        (PINS if name.startswith("pin_") else name)


def _candidates(sources, scopes, by_file):
    """The instances whose elaborate() holds one of `sources` (file, line): in each file, the instances
    built by the class whose `module_src` line is the last one at or before the line."""
    out = set()
    for f, line in sources:
        paths = by_file.get(f)
        if not paths:
            continue
        starts = sorted({scopes[p][1] for p in paths})
        before = [l for l in starts if l <= line]
        start = before[-1] if before else None
        out.update(p for p in paths if start is None or scopes[p][1] == start)
    return sorted(out)


def _scope_of(name, scopes):
    """Deepest scope whose path is a prefix of `name` at a '.' boundary."""
    parts = _fold(name).split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in scopes:
            return prefix
    return ""


def _distance(a, b):
    pa, pb = (a.split(".") if a else []), (b.split(".") if b else [])
    common = 0
    for x, y in zip(pa, pb):
        if x != y:
            break
        common += 1
    return len(pa) + len(pb) - 2 * common


def _generated(name):
    return name.startswith("$")


_OUTPUTS = {"O", "COUT", "LO", "F", "FCO", "OFX", "Q", "DO", "RDATA"}


def _direction(cell, port, dirs):
    d = dirs.get(port)
    if d:
        return d
    return "output" if port in _OUTPUTS or port.rstrip("0123456789") in _OUTPUTS else "input"


def _has_ff(cell):
    """An iCE40 LC whose flip-flop is used (ECP5 keeps LUTs and FFs in separate cells: a COMB has none)."""
    if cell.get("type") == "ICESTORM_LC":
        return bool(str(cell.get("parameters", {}).get("DFF_ENABLE", "0")).strip("0"))
    return cell.get("type") != "TRELLIS_COMB"


_NET_OF_CELL = re.compile(r"^(.*?)(?:_SB_|_TRELLIS_|_CCU2C_|_LUT4_|_DP16KD|_MULT18X18D|\$CARRY|$)")


def _aliases(netlist, scopes):
    """{net name: scopes of every net sharing a bit with it} from the yosys netlist: a signal connected
    between a module and its child keeps one name after flattening, but every name stays a netname."""
    if netlist is None:
        return {}
    names = _top_module(netlist).get("netnames", {})
    by_bit = defaultdict(set)
    for name, info in names.items():
        scope = _scope_of(name.lstrip("\\") + ".x", scopes)
        for b in info.get("bits", ()):
            if isinstance(b, int):
                by_bit[b].add(scope)
    return {name.lstrip("\\"): set().union(*(by_bit[b] for b in info.get("bits", ()) if isinstance(b, int)))
            for name, info in names.items()}


def _attribute(mod, kinds, scopes, rule, aliases=None):
    """{cell name: scope} for every placed cell of the routed module `mod` under `rule` ("name" or
    "fanout"), with the counts of each step and the unattributed cells. `aliases` (_aliases()) breaks the
    ties of step 1: of the nearest instances its source line allows, the one a net of its name reaches."""
    aliases = aliases or {}
    by_file = defaultdict(list)
    for path, f in scopes.items():
        if f:
            by_file[f[0]].append(path)
    all_cells = {name.lstrip("\\"): cell for name, cell in mod.get("cells", {}).items()}
    bit_name = {}
    for net, info in mod.get("netnames", {}).items():
        for b in info.get("bits", ()):
            if isinstance(b, int):
                bit_name.setdefault(b, net)

    def ignored(b):
        return not isinstance(b, int) or bool(_CONSTANT_NETS.search(bit_name.get(b, "")))

    # Step 1: anchors (a Python source line; or a register / memory / DSP / I/O cell, by its name; under
    # the name rule every named cell).
    anchored, loose, by_name, stats = {}, {}, {}, Counter()
    for name, cell in all_cells.items():
        kind = kinds.get(cell.get("type"))
        if kind is None and not cell.get("type", "").endswith("_IO"):
            continue                                       # global buffers and the like: not counted, no vote
        if _CONSTANT_DRIVER.match(name):
            anchored[name] = ""                            # the constant drivers belong to the whole design
            continue
        if _generated(name):
            loose[name] = None
            continue
        scope = by_name[name] = _scope_of(name, scopes)
        candidates = _candidates(_sources(cell.get("attributes", {}).get("src")), scopes, by_file)
        if candidates:
            if scope not in candidates:
                best = min(_distance(scope, p) for p in candidates)
                nearest = [p for p in candidates if _distance(scope, p) == best]
                if len(nearest) > 1:
                    net = _NET_OF_CELL.match(name)
                    reached = aliases.get(net.group(1), set()) if net else set()
                    nearest = [p for p in nearest if p in reached] or nearest
                if len(nearest) == 1:
                    scope = nearest[0]
            anchored[name] = scope
            stats["source"] += kind is not None
        elif rule == "name" or kind != "logic_cells" or _has_ff(cell):
            anchored[name] = scope
            stats["name"] += kind is not None
        else:
            loose[name] = scope                            # a LUT / carry: where its output goes decides

    # Step 2: the loose cells go where their output goes (the registers, memories, DSPs or pins fed).
    sinks_of_bit, cells_of_bit = defaultdict(set), defaultdict(set)
    for name, cell in all_cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            for b in bits:
                if not ignored(b):
                    cells_of_bit[b].add(name)
                    if _direction(cell, port, dirs) == "input":
                        sinks_of_bit[b].add(name)
    sinks = {}
    for name in loose:
        cell = all_cells[name]
        dirs = cell.get("port_directions", {})
        out = set()
        for port, bits in cell.get("connections", {}).items():
            if _direction(cell, port, dirs) == "output":
                for b in bits:
                    if not ignored(b):
                        out |= sinks_of_bit[b]
        out.discard(name)
        sinks[name] = out
    where = dict(anchored)

    def by_fanout():
        for _ in range(FANOUT_ROUNDS):
            changed = False
            for name in loose:
                if name in where:
                    continue
                votes = Counter(where[o] for o in sinks[name] if o in where)
                if votes:
                    where[name] = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0] != loose[name], kv[0]))[0][0]
                    stats["fanout"] += 1
                    changed = True
            if not changed:
                return

    by_fanout()
    # Left over (the output reaches nothing placed): the name; then the generated cells that drive those
    # by fanout again; the rest by any connected cell's module.
    for name, scope in loose.items():
        if name not in where and scope is not None:
            where[name] = scope
            stats["name"] += 1
    by_fanout()
    left = [name for name in loose if name not in where]
    for _ in range(FANOUT_ROUNDS):           # (a chain of generated cells resolves one link a round)
        still = []
        for name in left:
            votes = Counter()
            for bits in all_cells[name].get("connections", {}).values():
                for b in bits:
                    if ignored(b):
                        continue
                    for other in cells_of_bit[b]:
                        if other != name and other in where:
                            votes[where[other]] += 1
            if votes:
                where[name] = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                stats["neighbours"] += 1
            else:
                still.append(name)
        if len(still) == len(left):
            break
        left = still
    unattributed = set(left)
    return where, stats, unattributed, by_name


def _tally(cells, kinds, family, where, unattributed):
    own, total = defaultdict(Counter), Counter()
    for name, cell in cells.items():
        res = kinds[cell["type"]]
        scope = UNATTRIBUTED if name in unattributed else where[name]
        own[scope][res] += 1
        total[res] += 1
        if family == "ice40" and res == "logic_cells" and _has_ff(cell):
            own[scope]["ffs"] += 1
            total["ffs"] += 1
    return own, total


UNATTRIBUTED = "(unattributed)"


def _subtree(own, path):
    acc = Counter()
    for p, c in own.items():
        if p != UNATTRIBUTED and (path == "" or p == path or p.startswith(path + ".")):
            acc.update(c)
    return acc


def breakdown(routed, netlist=None, family="ice40"):
    """Per-module resources of the nextpnr `--write` netlist `routed` (dict or path); `netlist`: the
    yosys netlist (dict or path) for the module instances and their files. See the module docstring."""
    routed = _load(routed)
    netlist = _load(netlist)
    kinds = CELL_KINDS[family]
    mod = _top_module(routed)
    cells = {name.lstrip("\\"): cell for name, cell in mod.get("cells", {}).items() if cell.get("type") in kinds}
    scopes = _scopes(netlist, [n for n in cells if not _generated(n)])

    # The fanout rule is the table's; the name rule's LC per module bounds the boundary uncertainty.
    aliases = _aliases(netlist, scopes)
    where, stats, unattributed, by_name = _attribute(mod, kinds, scopes, "fanout", aliases)
    own, total = _tally(cells, kinds, family, where, unattributed)
    n_where, _, n_unattributed, _ = _attribute(mod, kinds, scopes, "name", aliases)
    n_own, _ = _tally(cells, kinds, family, n_where, n_unattributed)
    moved = sum(1 for name in cells if name in by_name and n_where.get(name) != where.get(name))

    used = {p for p in set(own) | set(n_own) if p != UNATTRIBUTED}
    keep = {p for p in scopes if any(u == p or p == "" or u.startswith(p + ".") for u in used)}
    rows = []

    def children(path):
        depth = 0 if path == "" else path.count(".") + 1
        return sorted(p for p in keep if p and p.count(".") == depth and (path == "" or p.startswith(path + ".")))

    def walk(path, depth):
        f = scopes.get(path)
        rows.append({"path": path, "source": _short(f[0]) if f else ("I/O buffers" if path == PINS else ""),
                     "depth": depth,
                     "own": {r: own[path][r] for r in RESOURCES if own[path][r]},
                     "subtree": {r: v for r, v in _subtree(own, path).items() if v},
                     "logic_cells_by_name": _subtree(n_own, path)["logic_cells"]})
        for child in children(path):
            walk(child, depth + 1)

    walk("", 0)
    if unattributed or n_unattributed:
        rows.append({"path": UNATTRIBUTED, "source": "", "depth": 0, "own": dict(own[UNATTRIBUTED]),
                     "subtree": dict(own[UNATTRIBUTED]),
                     "logic_cells_by_name": n_own[UNATTRIBUTED]["logic_cells"]})
    rows_total = Counter()
    for r in rows:
        if r["depth"] == 0:
            rows_total.update(r["subtree"])
    totals = {r: total[r] for r in RESOURCES if total[r]}
    return {
        "method": ("nextpnr --write netlist: registers, DSPs, memories and I/O to the module instance of their "
                   "yosys src line (else of their name), every other LUT and carry to the instance of the cells "
                   "its output drives (boards/breakdown.py)"),
        "family": family,
        "total": totals,
        "check": {"rows_sum_equals_total": dict(rows_total) == totals,
                  "name_rows_sum_equals_total": sum(r["logic_cells_by_name"] for r in rows if r["depth"] == 0)
                  == total["logic_cells"]},
        "by_source": stats["source"], "by_name": stats["name"], "by_fanout": stats["fanout"],
        "by_neighbours": stats["neighbours"], "placed_elsewhere_by_name": moved,
        "unattributed": len(unattributed),
        "unattributed_cells": sorted(unattributed)[:20],
        "modules": rows,
    }


_COLUMNS = (("logic_cells", "LC"), ("ffs", "FF"), ("bram", "BRAM"), ("dsp", "DSP"), ("spram", "SPRAM"),
            ("lutram", "LUTRAM"))


def breakdown_markdown(bd, min_lc=0):
    """Markdown lines: one row per module instance, depth first (figures of the instance with everything
    below it; 'own LC': without its children; 'LC by name': the other attribution rule, see the module
    docstring), then how the table was made. Instances under `min_lc` LC that hold no memory or DSP are
    left out of the table (their cells stay in their parents' rows)."""
    total = bd["total"]
    cols = [(k, label) for k, label in _COLUMNS if total.get(k) and k != "logic_cells"]
    lc_total = total.get("logic_cells") or 0
    head = ["module", "source", "LC", "% of LC", "own LC", "LC by name"] + [label for _, label in cols]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for row in bd["modules"]:
        sub, own = row["subtree"], row["own"]
        if row["path"] not in ("", UNATTRIBUTED) and sub.get("logic_cells", 0) < min_lc and \
                not any(sub.get(k) for k in ("bram", "dsp", "spram", "lutram")):
            continue
        name = row["path"] or "(board wrapper: I/O, clock, reset)"
        indent = "· " * max(row["depth"] - 1, 0) if row["path"] else ""
        lc = sub.get("logic_cells", 0)
        cells = [indent + name, row["source"], f"{lc:,}", f"{100 * lc / lc_total:.1f}" if lc_total else "—",
                 f"{own.get('logic_cells', 0):,}", f"{row.get('logic_cells_by_name', 0):,}"]
        cells += [f"{sub.get(k, 0):,}" for k, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    check = "the rows add up to the totals" if bd["check"]["rows_sum_equals_total"] else \
        "THE ROWS DO NOT ADD UP to the totals"
    lines += ["", f"Per module: {bd['method']}. Figures are the module with everything below it; 'own LC' "
                  "is the module without its children (its glue). Logic at a module boundary counts for the "
                  "module whose register it feeds (the executor's reply-byte multiplexer for the encoder and "
                  "uart_tx); 'LC by name' places each LUT by the net ABC named it after instead: the two "
                  "columns differ by that boundary logic, and only the first is stable from one synthesis run "
                  f"to the next. Placed by source line {bd['by_source']:,} cells, by name {bd['by_name']:,}, "
                  f"by fanout {bd['by_fanout']:,}, by neighbours {bd['by_neighbours']:,}, unattributed "
                  f"{bd['unattributed']:,}; {bd['placed_elsewhere_by_name']:,} cells differ under the name "
                  f"rule; {check}."]
    return lines
