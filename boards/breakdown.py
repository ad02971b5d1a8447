"""Per-module resources of a placed design: which part of the hierarchy each logic cell belongs to.

    breakdown(routed, netlist=None, family="ice40")  -> dict (see below)
    breakdown_markdown(bd, total_lc=None)            -> markdown lines of the table

Method
------
nextpnr's `--write` netlist (routed.json) holds every placed cell: ICESTORM_LC / ICESTORM_RAM /
ICESTORM_DSP / ICESTORM_SPRAM on iCE40, TRELLIS_COMB / TRELLIS_FF / DP16KD / MULT18X18D / TRELLIS_RAMW
on ECP5. yosys flattens the design but keeps each cell's hierarchical name (`top.core.link.parser.crc_...`:
after ABC every LUT is named after a net it drives or reads, and that net after the register or signal
of the module that declared it), and Amaranth's `$scopeinfo` cells in the yosys netlist list every
module instance of the hierarchy with the file that built it (`module_src`). Each placed cell is
attributed in three steps:

1. name: the deepest module instance whose path is a prefix of the cell's name (memories are not
   instances: `...post.consts.0.0_RAM` belongs to `post`);
2. source: a cell whose `src` attribute names Python files of which none built that instance, but
   one did build an instance nearby, moves to the nearest such instance (tree distance; a tie keeps
   step 1's answer). This corrects the nets that cross a module boundary: a signal connected between
   two modules keeps one of the two names (`executor.payload__payload` is the parser's register), and
   a port forwarded to the parent takes the parent's (`accelerator.o__payload` is the classifier's
   accumulator);
3. neighbours: cells nextpnr made itself (`$nextpnr_ICESTORM_LC_n`: carry-chain feed-ins and
   route-throughs) go to the instance most of their connected cells belong to (constant, clock and
   nets of fanout > 32 ignored); the packer's constant drivers go to the root; a cell left over is an
   `unattributed` row.

Every placed cell lands in exactly one row, so the rows add up to nextpnr's totals (the `check` entry
says so). Limits: a LUT shared by the logic of two modules, or named after the other side of a port,
is counted once, on one side; step 2 fixes the cases where the register's source line tells. Counts are
therefore exact per cell and approximate per module by a few percent at module boundaries; the
`moved_by_source` and `by_neighbours` counts say how many cells steps 2 and 3 placed.

Result dict: {"method", "family", "total": {resource: n}, "check": {...}, "moved_by_source",
"by_neighbours", "modules": [{"path", "source", "depth", "own": {resource: n}, "subtree": {...}}]
in depth-first order, the root ("" = the board wrapper: I/O buffers, clock and reset) first}.
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
MAX_FANOUT = 32
NEIGHBOUR_ROUNDS = 4


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


def breakdown(routed, netlist=None, family="ice40"):
    """Per-module resources of the nextpnr `--write` netlist `routed` (dict or path); `netlist`: the
    yosys netlist (dict or path) for the module instances and their files. See the module docstring."""
    routed = _load(routed)
    netlist = _load(netlist)
    kinds = CELL_KINDS[family]
    mod = _top_module(routed)
    cells = {name.lstrip("\\"): cell for name, cell in mod.get("cells", {}).items() if cell.get("type") in kinds}
    scopes = _scopes(netlist, [n for n in cells if not _generated(n)])
    by_file = defaultdict(list)
    for path, f in scopes.items():
        if f:
            by_file[f[0]].append(path)

    where, moved = {}, 0
    pending = []
    for name, cell in cells.items():
        if _CONSTANT_DRIVER.match(name):
            where[name] = ""                  # the constant drivers belong to the whole design
            continue
        if _generated(name):
            pending.append(name)
            continue
        scope = _scope_of(name, scopes)
        candidates = _candidates(_sources(cell.get("attributes", {}).get("src")), scopes, by_file)
        if candidates and scope not in candidates:
            best = min(_distance(scope, p) for p in candidates)
            nearest = [p for p in candidates if _distance(scope, p) == best]
            if len(nearest) == 1:
                scope, moved = nearest[0], moved + 1
        where[name] = scope

    # Step 3: generated cells take the scope most of their neighbours have.
    net_cells = defaultdict(set)
    cell_nets = defaultdict(set)
    bit_name = {}
    for net, info in mod.get("netnames", {}).items():
        for b in info.get("bits", ()):
            if isinstance(b, int):
                bit_name.setdefault(b, net)
    for name, cell in mod.get("cells", {}).items():
        name = name.lstrip("\\")
        for bits in cell.get("connections", {}).values():
            for b in bits:
                if isinstance(b, int) and not _CONSTANT_NETS.search(bit_name.get(b, "")):
                    net_cells[b].add(name)
                    cell_nets[name].add(b)
    by_neighbours = 0
    for _ in range(NEIGHBOUR_ROUNDS):
        still = []
        for name in pending:
            votes = Counter()
            for b in cell_nets.get(name, ()):
                members = net_cells[b]
                if len(members) > MAX_FANOUT:
                    continue
                for other in members:
                    if other != name and other in where:
                        votes[where[other]] += 1
            if votes:
                where[name] = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                by_neighbours += 1
            else:
                still.append(name)
        if len(still) == len(pending):
            break
        pending = still
    unattributed = set(pending)

    own = defaultdict(Counter)
    total = Counter()
    for name, cell in cells.items():
        res = kinds[cell["type"]]
        scope = "(unattributed)" if name in unattributed else where[name]
        own[scope][res] += 1
        total[res] += 1
        if family == "ice40" and res == "logic_cells" and str(cell.get("parameters", {}).get("DFF_ENABLE", "0")).strip("0"):
            own[scope]["ffs"] += 1
            total["ffs"] += 1

    def subtree(path):
        acc = Counter()
        for p, c in own.items():
            if p == "(unattributed)":
                continue
            if path == "" or p == path or p.startswith(path + "."):
                acc.update(c)
        return acc

    used = set(own) - {"(unattributed)"}
    keep = {p for p in scopes if any(u == p or (p == "" or u.startswith(p + ".")) for u in used)}
    rows = []

    def children(path):
        depth = 0 if path == "" else path.count(".") + 1
        return sorted(p for p in keep if p and p.count(".") == depth and (path == "" or p.startswith(path + ".")))

    def walk(path, depth):
        f = scopes.get(path)
        rows.append({"path": path, "source": _short(f[0]) if f else ("I/O buffers" if path == PINS else ""),
                     "depth": depth,
                     "own": {r: own[path][r] for r in RESOURCES if own[path][r]},
                     "subtree": {r: v for r, v in subtree(path).items() if v}})
        for child in children(path):
            walk(child, depth + 1)

    walk("", 0)
    if unattributed:
        rows.append({"path": "(unattributed)", "source": "", "depth": 0,
                     "own": dict(own["(unattributed)"]), "subtree": dict(own["(unattributed)"])})
    rows_total = Counter()
    for r in rows:
        if r["depth"] == 0:
            rows_total.update(r["subtree"])
    return {
        "method": ("nextpnr --write netlist: each placed cell to the deepest module instance prefixing its "
                   "name, moved by its yosys src file where that names another instance nearby; nextpnr's own "
                   "cells by their neighbours (boards/breakdown.py)"),
        "family": family,
        "total": {r: total[r] for r in RESOURCES if total[r]},
        "check": {"rows_sum_equals_total": dict(rows_total) == {r: total[r] for r in RESOURCES if total[r]},
                  "cells": sum(total[r] for r in RESOURCES if r != "ffs" or family == "ecp5")},
        "moved_by_source": moved,
        "by_neighbours": by_neighbours,
        "unattributed": len(unattributed),
        "unattributed_cells": sorted(unattributed)[:20],
        "modules": rows,
    }


_COLUMNS = (("logic_cells", "LC"), ("ffs", "FF"), ("bram", "BRAM"), ("dsp", "DSP"), ("spram", "SPRAM"),
            ("lutram", "LUTRAM"))


def breakdown_markdown(bd, min_lc=0):
    """Markdown lines: one row per module instance, depth first (figures of the instance with everything
    below it; 'own LC': without its children), then how the table was made. Instances under `min_lc`
    LC that hold no memory or DSP are left out of the table (their cells stay in their parents' rows)."""
    total = bd["total"]
    cols = [(k, label) for k, label in _COLUMNS if total.get(k)]
    lc_total = total.get("logic_cells") or 0
    head = ["module", "source", "LC", "% of LC", "own LC"] + [label for k, label in cols if k != "logic_cells"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for row in bd["modules"]:
        sub, own = row["subtree"], row["own"]
        if row["path"] not in ("", "(unattributed)") and sub.get("logic_cells", 0) < min_lc and \
                not any(sub.get(k) for k in ("bram", "dsp", "spram", "lutram")):
            continue
        name = row["path"] or "(board wrapper: I/O, clock, reset)"
        indent = "· " * max(row["depth"] - 1, 0) if row["path"] else ""
        lc = sub.get("logic_cells", 0)
        cells = [indent + name, row["source"], f"{lc:,}", f"{100 * lc / lc_total:.1f}" if lc_total else "—",
                 f"{own.get('logic_cells', 0):,}"]
        cells += [f"{sub.get(k, 0):,}" for k, _ in cols if k != "logic_cells"]
        lines.append("| " + " | ".join(cells) + " |")
    check = "the rows add up to the totals" if bd["check"]["rows_sum_equals_total"] else \
        "THE ROWS DO NOT ADD UP to the totals"
    lines += ["", f"Per module: {bd['method']}. Figures are the module with everything below it; 'own LC' "
                  f"is the module without its children (its glue). {bd['moved_by_source']:,} cells were "
                  f"moved by their source file, {bd['by_neighbours']:,} nextpnr-made cells placed by their "
                  f"neighbours, {bd['unattributed']:,} left unattributed; {check}."]
    return lines
