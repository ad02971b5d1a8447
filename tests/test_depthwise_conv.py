# amaranth: UnusedElaboratable=no
"""hw/depthwise_conv.py against its golden twin golden/depthwise_conv.py.

Amaranth-simulator tests: random configurations (channels, kernel 1..29, dilation 1..3, lanes, shift,
frames shorter and longer than the kernel span), random and extreme inputs, random valid/ready stalls,
several runs through one unit with layer switches, exact array comparison; argument validation; exact
cycle counts. cocotb/Verilator (and Icarus when on PATH) tests at the end.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from ternkws.golden.depthwise_conv import depthwise_conv
from ternkws.hw.depthwise_conv import DepthwiseConv, DepthwiseLayer, cycles_per_frame, cycles_per_run
from ternkws.sim.cocotb_runner import run_cocotb, simulators_available


# --- Amaranth-simulator harness --------------------------------------------------------------------

def simulate(dut, runs, *, seed=0, in_stall=0.0, out_stall=0.0, tail=20):
    """Drive `runs` = [(layer index, x (T, C) int8), ...] through `dut` with random stalls.

    Returns (outputs, stamps): outputs[r] is the (T, C) array the unit produced for run r; stamps[r] lists
    (edge number, beat index) of every output transfer, edges counted from the first one that sees
    `i.valid` for that run. Also checks the stream rules on `o` (a beat offered stays, unchanged, until
    taken), that the unit goes idle after each run, and that no beat leaves after the last run.
    """
    rng = np.random.default_rng(seed)
    lanes = dut.lanes
    run_start = [None] * len(runs)
    outputs, stamps = [], []
    cycle = 0

    def beats_of(x):
        return [[int(v) for v in x[t, j * lanes:(j + 1) * lanes]]
                for t in range(x.shape[0]) for j in range(x.shape[1] // lanes)]

    async def producer(ctx):
        edges = 0                # each testbench counts the same clock edges itself
        for r, (layer, x) in enumerate(runs):
            ctx.set(dut.i.valid, 0)
            while not ctx.get(dut.idle):
                await ctx.tick()
                edges += 1
            ctx.set(dut.layer, layer)
            beats = beats_of(x)
            n = 0
            while n < len(beats):
                valid = bool(rng.random() >= in_stall)
                ctx.set(dut.i.valid, valid)
                # garbage on the payload while not valid must not matter
                ctx.set(dut.i.payload, beats[n] if valid else [int(v) for v in rng.integers(-128, 128, lanes)])
                if valid and run_start[r] is None:
                    run_start[r] = edges + 1
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                edges += 1
                if valid and ready:
                    n += 1
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        nonlocal cycle
        pending = None           # beat offered but not taken at the previous edge
        for layer, x in runs:
            need = x.shape[0] * x.shape[1] // lanes
            got, when = [], []
            while len(got) < need:
                ready = bool(rng.random() >= out_stall)
                ctx.set(dut.o.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                cycle += 1
                beat = [payload[n] for n in range(lanes)] if valid else None
                if pending is not None:
                    assert beat == pending, "o dropped or changed a beat it offered before it was taken"
                pending = None
                if valid and ready:
                    got.append(beat)
                    when.append(cycle)
                elif valid:
                    pending = beat
            r = len(outputs)
            outputs.append(np.array(got, dtype=np.int64).reshape(x.shape))
            stamps.append([c - run_start[r] + 1 for c in when])   # both edges count
        ctx.set(dut.o.ready, 1)
        for _ in range(tail):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "o offered a beat after the last frame of the last run"
        assert ctx.get(dut.idle), "unit not idle after its last run"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return outputs, stamps


def golden_runs(layers, runs):
    return [depthwise_conv(x, layers[n].weight, layers[n].dilation, layers[n].shift).astype(np.int64)
            for n, x in runs]


def random_input(rng, frames, channels, kind):
    if kind == "random":
        return rng.integers(-128, 128, (frames, channels))
    return np.full((frames, channels), {"min": -128, "max": 127, "zero": 0}[kind])


def random_config(rng):
    """1-3 layers sharing `lanes`, small enough for the Python simulator."""
    lanes = int(rng.choice([1, 2, 4, 8], p=[0.3, 0.3, 0.25, 0.15]))
    layers = []
    for _ in range(int(rng.integers(1, 4))):
        kernel = int(rng.choice([1, 3, 5, 7, 9, 13, 29] if rng.random() < 0.7 else range(1, 30, 2)))
        groups = int(rng.integers(1, max(2, 48 // (kernel * lanes) + 1) + 1))
        channels = groups * lanes
        dilation = int(rng.integers(1, 4))
        wkind = rng.choice(["random", "random", "min", "max"])
        w = random_input(rng, channels, kernel, wkind)
        layers.append(DepthwiseLayer(channels, kernel, dilation, w.astype(np.int8), int(rng.integers(0, 14))))
    # frames below, at and above the largest span ((K - 1) * dil + 1)
    span = max(layer.span for layer in layers)
    frames = int(rng.choice([1, 2, max(1, span // 2), span, span + 3, int(rng.integers(1, 12))]))
    frames = min(frames, 40)
    return layers, lanes, frames


# --- value tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(64))
def test_random_configs_match_golden(seed):
    rng = np.random.default_rng(1000 + seed)
    layers, lanes, frames = random_config(rng)
    # Every fourth case uses the single-port line buffer (iCE40 SPRAM mapping).
    dut = DepthwiseConv(layers, lanes, frames, single_port=seed % 4 == 3)
    runs = []
    for kind in ["random", rng.choice(["min", "max", "zero"]), "random"]:
        n = int(rng.integers(len(layers)))
        runs.append((n, random_input(rng, frames, layers[n].channels, kind)))
    stalls = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.5, 0.7)][seed % 4]
    outputs, _ = simulate(dut, runs, seed=seed, in_stall=stalls[0], out_stall=stalls[1])
    for r, (got, want) in enumerate(zip(outputs, golden_runs(layers, runs))):
        np.testing.assert_array_equal(got, want, err_msg=f"run {r} (layer {runs[r][0]}) differs from golden")


def test_extreme_values_saturate_and_large_shifts():
    """Largest positive and negative sums (K = 29, all -128 or 127 * -128) at shift 0 saturate; shifts
    beyond the accumulator width give 0 as the golden model does; dilation 3 with frames < span."""
    k = 29
    layers = [
        DepthwiseLayer(2, k, 1, np.full((2, k), -128), 0),
        DepthwiseLayer(2, k, 1, np.array([[127] * k, [-128] * k]), 0),
        DepthwiseLayer(2, k, 3, np.array([[127] * k, [-128] * k]), 19),
        DepthwiseLayer(2, k, 2, np.full((2, k), -128), 60),
    ]
    dut = DepthwiseConv(layers, lanes=2, frames=30)
    runs = [(0, np.full((30, 2), -128)), (1, np.full((30, 2), -128)), (2, np.full((30, 2), 127)),
            (3, np.full((30, 2), -128)), (2, np.full((30, 2), -128))]
    outputs, _ = simulate(dut, runs, seed=3, in_stall=0.2, out_stall=0.2)
    want = golden_runs(layers, runs)
    assert want[0].max() == 127 and want[1].min() == -128 and not want[3].any()
    for got, w in zip(outputs, want):
        np.testing.assert_array_equal(got, w)


def test_default_network_layer_shapes_one_frame_each_way():
    """The default network's widest layer (128 channels, K 13) and dilated K 29, lanes 16, in one unit."""
    rng = np.random.default_rng(7)
    shapes = [(128, 13, 1), (64, 29, 2)]
    layers = [DepthwiseLayer(c, k, d, rng.integers(-128, 128, (c, k)), 9) for c, k, d in shapes]
    dut = DepthwiseConv(layers, lanes=16, frames=6)
    runs = [(0, rng.integers(-128, 128, (6, 128))), (1, rng.integers(-128, 128, (6, 64)))]
    outputs, _ = simulate(dut, runs, seed=1, in_stall=0.3, out_stall=0.3)
    for got, want in zip(outputs, golden_runs(layers, runs)):
        np.testing.assert_array_equal(got, want)


# --- cycle counts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("channels, kernel, dilation, lanes, frames", [
    (8, 5, 1, 1, 9), (8, 11, 2, 2, 14), (16, 3, 3, 4, 12), (4, 1, 1, 4, 5), (6, 7, 1, 3, 3),
])
def test_cycles_exact(channels, kernel, dilation, lanes, frames):
    """With `i` always valid and `o` always ready: output frames leave exactly C * K / lanes cycles apart
    (the steady state), beats of a frame K cycles apart, and a run takes cycles_per_run() edges."""
    rng = np.random.default_rng(channels * kernel)
    layer = DepthwiseLayer(channels, kernel, dilation, rng.integers(-128, 128, (channels, kernel)), 4)
    dut = DepthwiseConv([layer], lanes, frames)
    runs = [(0, rng.integers(-128, 128, (frames, channels)))] * 2
    outputs, stamps = simulate(dut, runs)
    groups = channels // lanes
    for got, want, st in zip(outputs, golden_runs([layer] * 1, [(0, runs[0][1])]) * 2, stamps):
        np.testing.assert_array_equal(got, want)
        assert st[-1] == cycles_per_run(channels, kernel, dilation, lanes, frames)
        assert np.all(np.diff(st) == kernel)
        frame_ends = st[groups - 1::groups]
        assert cycles_per_frame(channels, kernel, lanes) == groups * kernel
        assert np.all(np.diff(frame_ends) == groups * kernel)


# --- validation --------------------------------------------------------------------------------------

def _w(c, k):
    return np.zeros((c, k), dtype=np.int8)


@pytest.mark.parametrize("channels, kernel, dilation, lanes", [(8, 5, 1, 2), (4, 3, 2, 1)])
def test_single_port_costs_one_cycle_per_input_beat(channels, kernel, dilation, lanes):
    """Single-port line buffer: C * (K + 1) / lanes cycles per frame in steady state, same values."""
    rng = np.random.default_rng(7)
    layer = DepthwiseLayer(channels, kernel, dilation, rng.integers(-128, 128, (channels, kernel)).astype(np.int8), 6)
    x = rng.integers(-128, 128, (24, channels))
    outs = {}
    for single in (False, True):
        dut = DepthwiseConv([layer], lanes, 24, single_port=single)
        got, stamps = simulate(dut, [(0, x)])
        np.testing.assert_array_equal(got[0], golden_runs([layer], [(0, x)])[0])
        outs[single] = stamps[0]
    g = channels // lanes
    per_frame = lambda e: (e[-1 - 8 * g] - e[-1 - 12 * g]) / 4  # noqa: E731  (4 frames in the steady state)
    assert per_frame(outs[False]) == channels * kernel / lanes
    assert per_frame(outs[True]) == channels * (kernel + 1) / lanes


@pytest.mark.parametrize("layers, lanes, frames, exc, match", [
    ([(4, 4, 1, _w(4, 4), 0)], 1, 8, ValueError, r"layer 0: kernel must be odd"),
    ([(4, 3, 1, _w(4, 3), 0), (6, 3, 1, _w(6, 3), 0)], 4, 8, ValueError,
     r"layer 1: lanes \(4\) must divide its channels \(6\)"),
    ([(4, 3, 1, _w(4, 5), 0)], 1, 8, ValueError, r"layer 0: weight must have shape .* \(4, 3\), not \(4, 5\)"),
    ([(4, 3, 1, np.full((4, 3), 128), 0)], 1, 8, ValueError, r"layer 0: weight must be int8"),
    ([(4, 3, 1, np.full((4, 3), 0.5), 0)], 1, 8, ValueError, r"layer 0: weight must hold integers"),
    ([(4, 3, 1, _w(4, 3), 0)], 1, 0, ValueError, r"frames must be >= 1, not 0"),
    ([(4, 3, 1, _w(4, 3), -1)], 1, 8, ValueError, r"layer 0: shift must be >= 0, not -1"),
    ([(4, 3, 0, _w(4, 3), 0)], 1, 8, ValueError, r"layer 0: dilation must be >= 1"),
    ([(0, 3, 1, _w(0, 3), 0)], 1, 8, ValueError, r"layer 0: channels must be >= 1"),
    ([(4, 3, 1, _w(4, 3), 0)], 0, 8, ValueError, r"lanes must be >= 1"),
    ([], 1, 8, ValueError, r"at least one layer"),
    ([(4, 3, 1, _w(4, 3))], 1, 8, TypeError, r"layer 0: expected \(channels, kernel, dilation, weight, shift\)"),
    ([(4, 3.0, 1, _w(4, 3), 0)], 1, 8, TypeError, r"layer 0: kernel must be an integer"),
])
def test_validation(layers, lanes, frames, exc, match):
    with pytest.raises(exc, match=match):
        DepthwiseConv(layers, lanes, frames)


def test_properties_and_memory_sizes():
    layers = [DepthwiseLayer(64, 29, 2, _w(64, 29), 0), DepthwiseLayer(128, 13, 1, _w(128, 13), 0)]
    dut = DepthwiseConv(layers, lanes=8, frames=128)
    assert dut.lanes == 8 and dut.frames == 128 and len(dut.layers) == 2
    # ring of (K-1)*dil + 2 frames of C / lanes words: 58 * 8 = 464 > 14 * 16 = 224
    assert dut.line_buffer_depth == 464
    assert dut.weight_depth == (64 * 29 + 128 * 13) // 8
    assert dut.acc_width == 20


# --- cocotb through Verilator / Icarus ---------------------------------------------------------------

def _params(layers, lanes, frames, **extra):
    return {"layers": [[layer.channels, layer.kernel, layer.dilation, np.asarray(layer.weight).tolist(),
                        layer.shift] for layer in layers],
            "lanes": lanes, "frames": frames, **extra}


def _cocotb_cases(n_layers, seeds, runs_per_case=3):
    kinds = ["random", "min", "random", "max", "zero", "random"]
    stalls = [(0.0, 0.0), (0.3, 0.5), (0.6, 0.2), (0.1, 0.8)]
    return [{"rng_seed": s, "in_stall": stalls[s % 4][0], "out_stall": stalls[s % 4][1],
             "runs": [[(s + r) % n_layers, kinds[(s + r) % len(kinds)]] for r in range(runs_per_case)]}
            for s in seeds]


def _cocotb_builds():
    rng = np.random.default_rng(42)
    small = [DepthwiseLayer(8, 3, 1, rng.integers(-128, 128, (8, 3)), 5),
             DepthwiseLayer(4, 29, 2, rng.integers(-128, 128, (4, 29)), 11),   # span 57 > 12 frames
             DepthwiseLayer(6, 1, 1, rng.integers(-128, 128, (6, 1)), 0),
             DepthwiseLayer(2, 5, 3, np.full((2, 5), -128), 0)]                 # saturates
    wide = [DepthwiseLayer(64, 11, 1, rng.integers(-128, 128, (64, 11)), 10),
            DepthwiseLayer(16, 7, 3, rng.integers(-128, 128, (16, 7)), 8)]
    return {
        "small_lanes2": (small, 2, 12, _cocotb_cases(len(small), range(6), 4), [0, 1, 2, 3]),
        "wide_lanes8": (wide, 8, 20, _cocotb_cases(len(wide), range(3), 2), [0, 1]),
    }


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", simulators_available())
@pytest.mark.parametrize("build", ["small_lanes2", "wide_lanes8"])
def test_cocotb(simulator, build):
    layers, lanes, frames, cases, cycle_runs = _cocotb_builds()[build]
    run_cocotb(DepthwiseConv(layers, lanes, frames), "ternkws.sim.tb_depthwise_conv", name=f"depthwise_conv_{build}",
               params=_params(layers, lanes, frames, cases=cases, cycle_runs=cycle_runs), simulator=simulator)


# The cycle table of the module docstring: the default network's depthwise layers, T = 128, every lanes
# value; one build per lanes value holds all five layers. About 1.6 M simulated cycles: `make verify-full`.
DEFAULT_LAYERS = [(64, 11, 1), (128, 13, 1), (64, 15, 1), (64, 17, 1), (64, 29, 2)]


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
def test_cycle_table_default_layers(lanes):
    import json
    rng = np.random.default_rng(lanes)
    layers = [DepthwiseLayer(c, k, d, rng.integers(-128, 128, (c, k)), 12) for c, k, d in DEFAULT_LAYERS]
    results = run_cocotb(DepthwiseConv(layers, lanes, 128), "ternkws.sim.tb_depthwise_conv",
                         name=f"depthwise_conv_table_lanes{lanes}", testcase=["depthwise_conv_cycles"],
                         params=_params(layers, lanes, 128, cases=[], cycle_runs=list(range(len(layers)))))
    measured = json.loads((results.parent / "cycles.json").read_text())
    for row, (c, k, d) in zip(measured, DEFAULT_LAYERS):
        assert row["cycles_per_run"] == cycles_per_run(c, k, d, lanes, 128)
        assert row["frame_periods"] == [c * k // lanes]
        print(f"(C={c}, K={k}, dil={d}) lanes {lanes}: {c * k // lanes} cycles/frame, "
              f"{row['cycles_per_run']} cycles/run")
