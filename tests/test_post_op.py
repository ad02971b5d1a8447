# amaranth: UnusedElaboratable=no
"""hw/post_op.py against its golden twin golden/post_op.py.

Amaranth-simulator tests: random layer sets (with and without residual, shifts 0..40, relu on/off),
random and extreme acc / mult / bias values, layer switches at every frame and garbage on `layer`
mid-frame, random valid/ready stalls, exact comparison; throughput and latency; argument validation.
cocotb/Verilator (and Icarus when on PATH) tests at the end.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from ternkws.golden.post_op import post_op
from ternkws.hw.post_op import MAX_ACC_WIDTH, MAX_SHIFT, PostOp, PostOpLayer
from ternkws.sim.cocotb_runner import run_cocotb, simulators_available

LATENCY = 4     # edges from a beat's transfer on `i` to its result being offered on `o`


# --- Amaranth-simulator harness --------------------------------------------------------------------

def simulate(dut, frames, *, seed=0, in_stall=0.0, out_stall=0.0, tail=10):
    """Drive frames = [(layer index, acc (c_out,), acc_res (c_out,)), ...] through `dut`.

    Returns (outputs, in_edges, out_edges): the int8 results in order and the edge numbers of every
    transfer on `i` and `o`. `layer` carries the frame's layer with channel 0 and a random layer index
    on the other beats (it is only sampled with channel 0). Checks the stream rules on `o`.
    """
    rng = np.random.default_rng(seed)
    n_layers = len(dut.layers)
    aw = dut.acc_width
    total = sum(len(acc) for _, acc, _ in frames)
    outputs, in_edges, out_edges = [], [], []

    async def producer(ctx):
        edges = 0
        for layer, acc, acc_res in frames:
            c = 0
            while c < len(acc):
                valid = bool(rng.random() >= in_stall)
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.layer, layer if c == 0 else int(rng.integers(n_layers)))
                if valid:
                    ctx.set(dut.i.payload, {"acc": int(acc[c]), "acc_res": int(acc_res[c])})
                else:
                    ctx.set(dut.i.payload, {"acc": int(rng.integers(-(1 << (aw - 1)), 1 << (aw - 1))),
                                            "acc_res": 0})
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                edges += 1
                if valid and ready:
                    in_edges.append(edges)
                    c += 1
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        edges, pending = 0, None
        while len(outputs) < total:
            ready = bool(rng.random() >= out_stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            edges += 1
            value = int(payload) if valid else None
            if pending is not None:
                assert value == pending, "o dropped or changed a beat it offered before it was taken"
            pending = None
            if valid and ready:
                outputs.append(value)
                out_edges.append(edges)
            elif valid:
                pending = value
        ctx.set(dut.o.ready, 1)
        for _ in range(tail):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "o offered a beat nobody sent"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(outputs, dtype=np.int64), in_edges, out_edges


def golden(layers, frames, relu=True):
    out = []
    for n, acc, acc_res in frames:
        layer = layers[n]
        res = acc_res[None] if layer.mult_res is not None else None
        out.append(post_op(acc[None], layer.mult, layer.bias, layer.shift, res, layer.mult_res, relu=relu)[0])
    return np.concatenate(out).astype(np.int64)


def random_layer(rng, acc_width, residual, kind):
    """kind 'scaled': |z| >> shift lands around 2^7 so outputs spread over the int8 range; 'full': any
    value of every field (mostly saturating)."""
    c_out = int(rng.integers(1, 9))
    if kind == "full":
        shift = int(rng.integers(0, MAX_SHIFT + 1))
        mult = rng.integers(-2 ** 15, 2 ** 15, c_out)
        bias = rng.integers(-2 ** 31, 2 ** 31, c_out)
        mult_res = rng.integers(-2 ** 15, 2 ** 15, c_out) if residual else None
    else:
        log2_mult = int(rng.integers(0, 16))
        shift = int(np.clip(acc_width - 1 + log2_mult - 7 + rng.integers(-1, 2), 0, MAX_SHIFT))
        m = min(2 ** log2_mult, 2 ** 15 - 1)
        b = int(min(2 ** (shift + 7), 2 ** 31 - 1))
        mult = rng.integers(-m, m + 1, c_out)
        bias = rng.integers(-b, b + 1, c_out)
        mult_res = rng.integers(-m, m + 1, c_out) if residual else None
    return PostOpLayer(c_out, mult, bias, shift, mult_res)


def random_acc(rng, acc_width, c_out, kind):
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    if kind == "min":
        return np.full(c_out, lo)
    if kind == "max":
        return np.full(c_out, hi)
    if kind == "zero":
        return np.zeros(c_out, dtype=np.int64)
    return rng.integers(lo, hi + 1, c_out)


# --- value tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(48))
def test_random_layers_match_golden(seed):
    rng = np.random.default_rng(2000 + seed)
    acc_width = int(rng.choice([1, 8, 16, 17, 23, MAX_ACC_WIDTH]))
    relu = seed % 5 != 4
    layers = [random_layer(rng, acc_width, residual=bool(rng.random() < 0.5),
                           kind="full" if rng.random() < 0.25 else "scaled")
              for _ in range(int(rng.integers(1, 5)))]
    dut = PostOp(layers, acc_width, relu=relu)
    frames = []
    for _ in range(12):
        n = int(rng.integers(len(layers)))
        kinds = rng.choice(["random", "random", "random", "min", "max", "zero"], 2)
        frames.append((n, random_acc(rng, acc_width, layers[n].c_out, kinds[0]),
                       random_acc(rng, acc_width, layers[n].c_out, kinds[1])))
    stalls = [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.5, 0.7)][seed % 4]
    got, _, _ = simulate(dut, frames, seed=seed, in_stall=stalls[0], out_stall=stalls[1])
    want = golden(layers, frames, relu)
    np.testing.assert_array_equal(got, want)
    if relu:
        assert got.min() >= 0


def test_extremes_reach_every_bound():
    """Largest |z| (acc_width 31, mult -2^15 on both terms, bias +-2^31) at shift 0 and 40; the rounding
    half-way point; relu off gives -128."""
    aw = MAX_ACC_WIDTH
    lo = -(1 << (aw - 1))
    layers = [
        PostOpLayer(2, np.array([-2 ** 15, 2 ** 15 - 1]), np.array([2 ** 31 - 1, -2 ** 31]), 0,
                    np.array([-2 ** 15, -2 ** 15])),
        PostOpLayer(2, np.array([-2 ** 15, 2 ** 15 - 1]), np.array([2 ** 31 - 1, -2 ** 31]), MAX_SHIFT,
                    np.array([-2 ** 15, -2 ** 15])),
        # z = acc + bias with shift 1: +-0.5 rounds up
        PostOpLayer(3, np.array([1, 1, 1]), np.array([0, 0, 0]), 1, None),
    ]
    frames = [(0, np.array([lo, lo]), np.array([lo, lo])), (1, np.array([lo, lo]), np.array([lo, lo])),
              (2, np.array([1, -1, 255]), np.array([0, 0, 0])), (1, np.array([lo, -lo - 1]), np.array([0, 5]))]
    for relu in (True, False):
        dut = PostOp(layers, aw, relu=relu)
        got, _, _ = simulate(dut, frames, seed=1, in_stall=0.3, out_stall=0.3)
        want = golden(layers, frames, relu)
        np.testing.assert_array_equal(got, want)
        assert (127 in want) and (0 in want) and (relu or -128 in want)


def test_network_checkpoint_layers():
    """The bundled checkpoint's post-op constants (residual and plain layers) in one unit, fed the
    accumulators of golden/network.py's int8 forward of a random 16-frame clip, give its layer outputs."""
    from ternkws.golden import checkpoint, network
    from ternkws.golden.topology import plan
    model = checkpoint.load()          # the bundled default checkpoint
    top, q = model.topology, model.int_arrays
    trace = {}
    rng = np.random.default_rng(0)
    xq = rng.integers(-60, 61, (16, top.n_mfcc)).astype(np.int8)
    network.forward_int(top, q, xq, trace=trace)
    layers, frames = [], []
    for n, layer in enumerate(plan(top)):
        p = layer.name + ".q"
        layers.append(PostOpLayer(layer.c_out, q[p + ".mult"], q[p + ".bias"], int(q[p + ".shift"]),
                                  q[p + ".mult_res"] if layer.residual else None))
        acc = trace[layer.name + ".acc"]
        acc_res = trace.get(layer.name + ".res_acc", np.zeros_like(acc))
        frames += [(n, acc[t], acc_res[t]) for t in range(2)]
    acc_width = max(int(np.abs(f[1]).max()).bit_length() + 1 for f in frames)
    dut = PostOp(layers, max(acc_width, 16))
    got, _, _ = simulate(dut, frames, in_stall=0.2, out_stall=0.2)
    want = np.concatenate([trace[layer.name + ".out"][:2].ravel() for layer in plan(top)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("c_res, c_plain, packed", [((40, 40), (160, 160, 160), True),
                                                    ((100, 100, 100), (120, 120), False),
                                                    ((64,), (64, 64), False)])
def test_constants_longer_than_512_rows(c_res, c_plain, packed):
    """Tables of more than 512 rows: the tail shares the residual ROM's memory when it fits beside
    mult_res (packed), else one memory; every channel of every layer against the golden twin."""
    rng = np.random.default_rng(sum(c_res) + sum(c_plain))
    layers = []
    for c_out, residual in [(c, False) for c in c_plain[:1]] + [(c, True) for c in c_res] + \
            [(c, False) for c in c_plain[1:]]:
        base = random_layer(rng, 16, residual, "scaled")
        layers.append(PostOpLayer(c_out, rng.integers(-2 ** 15, 2 ** 15, c_out),
                                  rng.integers(-2 ** 22, 2 ** 22, c_out), base.shift,
                                  rng.integers(-2 ** 15, 2 ** 15, c_out) if residual else None))
    dut = PostOp(layers, 16)
    assert dut.packed_constants is packed
    frames = [(n, random_acc(rng, 16, layer.c_out, "random"), random_acc(rng, 16, layer.c_out, "random"))
              for n, layer in list(enumerate(layers)) * 2]
    got, _, _ = simulate(dut, frames, seed=3, in_stall=0.2, out_stall=0.3)
    np.testing.assert_array_equal(got, golden(layers, frames))


# --- throughput / latency --------------------------------------------------------------------------

def test_one_beat_per_cycle_and_latency():
    rng = np.random.default_rng(5)
    layers = [random_layer(rng, 16, True, "scaled"), random_layer(rng, 16, False, "scaled")]
    dut = PostOp(layers, 16)
    assert dut.multipliers == 2
    frames = [(n % 2, random_acc(rng, 16, layers[n % 2].c_out, "random"),
               random_acc(rng, 16, layers[n % 2].c_out, "random")) for n in range(10)]
    got, in_edges, out_edges = simulate(dut, frames)
    np.testing.assert_array_equal(got, golden(layers, frames))
    total = len(in_edges)
    assert in_edges == list(range(1, total + 1)), "input not taken every cycle"
    assert out_edges == [e + LATENCY for e in in_edges], "output not one beat per cycle after the latency"


def test_multiplier_count():
    plain = PostOpLayer(2, [1, 2], [0, 0], 3)
    residual = PostOpLayer(2, [1, 2], [0, 0], 3, [4, 5])
    for layers, count in (([plain], 1), ([plain, residual], 2)):
        dut = PostOp(layers, 16)
        assert dut.multipliers == count and dut.residual == (count == 2)


# --- validation --------------------------------------------------------------------------------------

@pytest.mark.parametrize("layers, acc_width, relu, exc, match", [
    ([(2, [1, 2], [0, 0], 41, None)], 16, True, ValueError, r"layer 0: shift must be in \[0, 40\], not 41"),
    ([(2, [1, 2], [0, 0], -1, None)], 16, True, ValueError, r"layer 0: shift must be in \[0, 40\], not -1"),
    ([(2, [1, 2 ** 15], [0, 0], 3, None)], 16, True, ValueError, r"layer 0: mult must be signed 16-bit"),
    ([(2, [1, 2], [0, 0], 3, [0, -2 ** 15 - 1])], 16, True, ValueError,
     r"layer 0: mult_res must be signed 16-bit"),
    ([(2, [1, 2], [0, 0], 3), (2, [1, 2], [2 ** 31, 0], 3)], 16, True, ValueError,
     r"layer 1: bias must be signed 32-bit"),
    ([(2, [1, 2, 3], [0, 0], 3, None)], 16, True, ValueError, r"layer 0: mult must have shape \(2,\)"),
    ([(2, [1, 2], [0], 3, None)], 16, True, ValueError, r"layer 0: bias must have shape \(2,\)"),
    ([(2, [1.5, 2], [0, 0], 3, None)], 16, True, ValueError, r"layer 0: mult must hold integers"),
    ([(0, [], [], 3, None)], 16, True, ValueError, r"layer 0: c_out must be >= 1"),
    ([(2, [1, 2], [0, 0], 3, None)], 32, True, ValueError, r"acc_width must be in \[1, 31\]"),
    ([(2, [1, 2], [0, 0], 3, None)], 0, True, ValueError, r"acc_width must be in \[1, 31\]"),
    ([(2, [1, 2], [0, 0], 3, None)], 16, 1, TypeError, r"relu must be True or False"),
    ([], 16, True, ValueError, r"at least one layer"),
    ([(2, [1, 2], [0, 0])], 16, True, TypeError, r"layer 0: expected \(c_out, mult, bias, shift"),
])
def test_validation(layers, acc_width, relu, exc, match):
    with pytest.raises(exc, match=match):
        PostOp(layers, acc_width, relu=relu)


# --- cocotb through Verilator / Icarus ---------------------------------------------------------------

def _cocotb_builds():
    rng = np.random.default_rng(11)
    residual = [random_layer(rng, 16, True, "scaled"), random_layer(rng, 16, False, "scaled"),
                random_layer(rng, 16, True, "full"),
                PostOpLayer(3, [-2 ** 15, 2 ** 15 - 1, 1], [2 ** 31 - 1, -2 ** 31, 0], 0, [-2 ** 15, 5, 0])]
    plain = [random_layer(rng, 23, False, "scaled") for _ in range(3)]
    stalls = [(0.0, 0.0), (0.3, 0.5), (0.6, 0.2), (0.1, 0.8)]
    cases = [{"rng_seed": s, "in_stall": stalls[s % 4][0], "out_stall": stalls[s % 4][1], "frames": 40}
             for s in range(8)]
    return {"residual_relu": (residual, 16, True, cases, 30), "plain_sat8": (plain, 23, False, cases[:4], 10)}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", simulators_available())
@pytest.mark.parametrize("build", ["residual_relu", "plain_sat8"])
def test_cocotb(simulator, build):
    layers, acc_width, relu, cases, throughput = _cocotb_builds()[build]
    p = {"layers": [[layer.c_out, np.asarray(layer.mult).tolist(), np.asarray(layer.bias).tolist(), layer.shift,
                     None if layer.mult_res is None else np.asarray(layer.mult_res).tolist()] for layer in layers],
         "acc_width": acc_width, "relu": relu, "cases": cases, "throughput": throughput}
    run_cocotb(PostOp(layers, acc_width, relu=relu), "ternkws.sim.tb_post_op", name=f"post_op_{build}", params=p,
               simulator=simulator)
