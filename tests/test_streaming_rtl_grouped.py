# amaranth: UnusedElaboratable=no
"""The streaming mode RTL with the grouped (zero-skipping) mixer against the golden streaming model, bit
for bit on every logit, class and event, under random back-pressure (the dense and stored-weights
mixers: test_streaming_rtl.py)."""

import pytest

from ternkws.sim.random_streams import run_stream_case

N_GROUPED = 22


@pytest.mark.parametrize("case", range(N_GROUPED))
def test_random_grouped_streaming_network_bit_exact(case):
    model, config, rtl, ref, diff = run_stream_case(24_000 + case, pattern="grouped",
                                                    stall=(0.0, 0.3, 0.6)[case % 3])
    assert diff == []
    assert model.topology.pattern == "grouped" and config.mixer_lanes in (1, 2, 4, 8, 16, 32)
    assert len(ref.logits) >= 3
