# amaranth: UnusedElaboratable=no
"""One mapping from a checkpoint to the hardware (hw/layers.py): the records, and the units that
`ternkws synth --unit` builds are the accelerator's own (identical Verilog)."""

import numpy as np
import pytest
from amaranth.back import verilog

from ternkws.boards import units
from ternkws.golden import checkpoint
from ternkws.golden.ternary_mixer import acc_bits, stored_acc_bits
from ternkws.hw.accelerator import Accelerator
from ternkws.hw.layers import (CONFIGS, MixerLayer, hardware_plan, make_depthwise, make_generator, make_mixer,
                               make_post_op)
from ternkws.sim.random_networks import random_case


@pytest.fixture(scope="module")
def default():
    return checkpoint.load()


@pytest.fixture(scope="module")
def baseline():
    return checkpoint.load(checkpoint.BASELINE_MODEL)


def test_records_follow_the_schedule(default):
    plan = hardware_plan(default, CONFIGS["up5k"])
    assert len(plan.mixer_layers) == len(plan.passes)
    for p, mixer in zip(plan.passes, plan.mixer_layers):
        assert (mixer.c_in, mixer.c_out) == (p.c_in, p.c_out)
        assert mixer.seed == (p.layer.res_seed if p.kind == "res" else p.layer.seed)
    # a residual layer runs its residual 1x1 first
    kinds = [(p.kind, p.layer.name) for p in plan.passes]
    first_res = next(n for n, (kind, _) in enumerate(kinds) if kind == "res")
    assert kinds[first_res + 1] == ("main", kinds[first_res][1])
    assert [d.channels for d in plan.depthwise_layers] == [l.c_in for l in default.plan if l.kernel]
    assert [p.c_out for p in plan.post_op_layers] == [l.c_out for l in default.plan]
    assert plan.classifier.channels == default.topology.final_channels
    assert plan.acc_width == max(acc_bits(p.c_in) for p in plan.passes)
    np.testing.assert_array_equal(plan.classifier.bias, default.int_arrays["classifier.q.bias"])


def test_mixer_record_unpacks_like_the_tuple():
    assert tuple(MixerLayer(64, 128, 7)) == (64, 128, 7)


def test_learned_model_widths(baseline):
    """The post-op of a learned checkpoint takes the stored mixer's (wider) accumulator."""
    plan = hardware_plan(baseline, CONFIGS["up5k"])
    assert plan.acc_width == max(stored_acc_bits(p.c_in) for p in plan.passes)
    assert plan.acc_width > max(acc_bits(p.c_in) for p in plan.passes)
    assert all(m.weights is not None for m in plan.mixer_layers)
    for p, m in zip(plan.passes, plan.mixer_layers):
        key = f"{p.layer.name}.q.{'res.' if p.kind == 'res' else ''}pw"
        np.testing.assert_array_equal(m.weights, baseline.int_arrays[key])


def test_lanes_that_do_not_divide_are_refused(default):
    import dataclasses

    from ternkws.hw.layers import AcceleratorConfig
    iid = dataclasses.replace(default, topology=dataclasses.replace(default.topology, pattern="iid"))
    with pytest.raises(ValueError, match="mixer_lanes=3 does not divide"):
        hardware_plan(iid, AcceleratorConfig("x", mixer_lanes=3, dw_lanes=1))
    with pytest.raises(ValueError, match="dw_lanes=3 does not divide"):
        hardware_plan(default, AcceleratorConfig("x", mixer_lanes=8, dw_lanes=3))


def _same_verilog(a, b, name):
    return verilog.convert(a, name=name) == verilog.convert(b, name=name)


# (unit, make_* of the accelerator's plan): what the accelerator instantiates
ACCELERATOR_UNITS = {"ternary_mixer": make_mixer, "grouped_mixer": make_mixer, "ternary_generator": make_generator,
                     "depthwise_conv": make_depthwise, "post_op": make_post_op}


def mixer_unit(model):
    """The synth unit name of the mixer the accelerator builds for `model`."""
    return "grouped_mixer" if model.topology.pattern == "grouped" else "ternary_mixer"


@pytest.mark.parametrize("preset", sorted(CONFIGS))
@pytest.mark.parametrize("name", ["mixer", "depthwise_conv", "post_op", "ternary_generator"])
def test_synth_unit_is_the_accelerators_unit(default, name, preset):
    """`ternkws synth --unit NAME --config PRESET` builds exactly the unit the accelerator builds."""
    name = mixer_unit(default) if name == "mixer" else name
    accelerator_plan = Accelerator(default, CONFIGS[preset]).plan
    lanes, options = units.config_of(name, preset)
    unit = units.build(name, lanes, default, **options)
    assert _same_verilog(unit, ACCELERATOR_UNITS[name](accelerator_plan), name)


def test_synth_units_of_a_learned_checkpoint_are_the_accelerators(baseline):
    """Learned checkpoints: the stored mixer and the post-op with the stored mixer's widths."""
    accelerator_plan = Accelerator(baseline, CONFIGS["up5k"]).plan
    for name, make in (("stored_mixer", make_mixer), ("post_op", make_post_op)):
        lanes, options = units.config_of(name, "up5k")
        assert _same_verilog(units.build(name, lanes, baseline, **options), make(accelerator_plan), name), name


@pytest.mark.parametrize("case", range(6))
def test_synth_units_equal_on_random_networks(case):
    model, config, _ = random_case(1000 + case, mixer="learned" if case % 2 else "ternary",
                                   pattern="grouped" if case % 4 == 2 else "iid")
    accelerator_plan = Accelerator(model, config).plan
    names = ["post_op", "depthwise_conv"] + (["stored_mixer"] if case % 2 else [mixer_unit(model)])
    for name in names:
        lanes = config.dw_lanes if name == "depthwise_conv" else 1 if name == "post_op" else config.mixer_lanes
        options = {"single_port": config.single_port_line_buffer, "spram": config.spram} \
            if name == "depthwise_conv" else {}
        make = {"post_op": make_post_op, "depthwise_conv": make_depthwise}.get(name, make_mixer)
        assert _same_verilog(units.build(name, lanes, model, **options), make(accelerator_plan), name), name


def test_the_equality_test_can_fail(default):
    """A unit built at other lanes is a different unit: the comparison above is not vacuous."""
    accelerator_plan = Accelerator(default, CONFIGS["up5k"]).plan
    assert not _same_verilog(units.build(mixer_unit(default), 4, default), make_mixer(accelerator_plan), "m")
