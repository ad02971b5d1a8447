"""The "grouped" ternary pattern (golden/SPEC.md section 1): bit consumption, order, known answers,
statistics (exact nonzeros per row, uniform positions, balanced signs), determinism."""

import numpy as np
import pytest

from ternkws.golden import ternary_generator as tg
from ternkws.golden.topology import Topology
from ternkws.golden.errors import UserError


def bytes_of(seed, count):
    bits = tg.lfsr_bits(tg.seed_state(seed), 8 * count).reshape(count, 8).astype(np.int64)
    return bits @ (1 << np.arange(8))


def test_known_answers_seed_3():
    # Slots (position, sign) of seed 3, 16 x 64 (M = 3, G = 22): the first slot of rows 0..7 are bytes
    # 0..7; the slots of row 0 in groups 0..7 are bytes 0, 8, 16, ...
    pos, sign = tg.grouped_slots(3, 16, 64, 1 / 3)
    assert pos[:8, 0].tolist() == [2, 1, 0, 2, 2, 0, 0, 0]
    assert sign[:8, 0].tolist() == [-1, -1, -1, -1, 1, 1, -1, -1]
    assert pos[0, :8].tolist() == [2, 0, 1, 2, 0, 0, 0, 1]
    assert sign[0, :8].tolist() == [-1, 1, 1, -1, 1, 1, 1, 1]


@pytest.mark.parametrize("c_out, c_in, density", [(16, 64, 1 / 3), (12, 10, 1 / 3), (9, 7, 0.25), (8, 5, 1.0)])
def test_order_and_decoding_from_the_bit_sequence(c_out, c_in, density):
    """Slot (o, g) is byte ((o // 8) * G + g) * 8 + o % 8: sign = bit 0, position = (u >> 1) * M >> 7."""
    m, g = tg.group_size(density), tg.groups_per_row(c_in, density)
    u = bytes_of(5, tg.slot_bytes(c_out, c_in, density))
    pos, sign = tg.grouped_slots(5, c_out, c_in, density)
    w = tg.grouped_matrix(5, c_out, c_in, density)
    for o in range(c_out):
        for k in range(g):
            b = u[((o // 8) * g + k) * 8 + o % 8]
            assert pos[o, k] == ((b >> 1) * m) >> 7 and sign[o, k] == (1 if b % 2 == 0 else -1)
            col = k * m + pos[o, k]
            row = w[o, k * m:(k + 1) * m]
            if col < c_in:
                assert w[o, col] == sign[o, k] and np.count_nonzero(row) == 1
            else:
                assert np.count_nonzero(row) == 0      # the slot falls past the end of a partial group


def test_exact_nonzeros_per_row():
    for c_in in (63, 64, 96, 128, 129):
        w = tg.grouped_matrix(11, 128, c_in, 1 / 3)
        full, rest = divmod(c_in, 3)
        nz = np.count_nonzero(w, axis=1)
        if rest == 0:
            assert (nz == full).all()
        else:
            pos, _ = tg.grouped_slots(11, 128, c_in, 1 / 3)
            assert np.array_equal(nz, full + (pos[:, -1] < rest))
        for k in range(full):                               # one nonzero in every full group
            assert (np.count_nonzero(w[:, 3 * k:3 * k + 3], axis=1) == 1).all()


def test_positions_uniform_signs_balanced_on_128x128():
    # By construction: positions 0, 1, 2 have probability 43, 43, 42 / 128; signs exactly 1/2.
    assert np.array_equal(tg.position_probabilities(3) * 128, [43, 43, 42])
    assert np.array_equal(tg.position_probabilities(4) * 128, [32, 32, 32, 32])
    pos, sign = tg.grouped_slots(1 << 16, 128, 129, 1 / 3)          # 43 full groups per row
    freq = np.bincount(pos.ravel(), minlength=3) / pos.size
    assert np.abs(freq - 1 / 3).max() < 0.02, freq
    assert abs((sign == 1).mean() - 0.5) < 0.02
    w = tg.grouped_matrix(1 << 16, 128, 129, 1 / 3)
    assert abs((w == 1).mean() - 1 / 6) < 0.01 and abs((w == -1).mean() - 1 / 6) < 0.01
    col_density = (w != 0).mean(axis=0)                            # every column alike
    assert np.abs(col_density - 1 / 3).max() < 0.15


def test_deterministic_and_seed_dependent():
    a = tg.grouped_matrix(42, 64, 128)
    assert np.array_equal(a, tg.grouped_matrix(42, 64, 128))
    assert not np.array_equal(a, tg.grouped_matrix(43, 64, 128))
    # Rows of a partial row block equal the same rows of a full one (rows past c_out are skipped bytes).
    assert np.array_equal(tg.grouped_matrix(42, 12, 128), tg.grouped_matrix(42, 16, 128)[:12])
    assert np.array_equal(tg.ternary_matrix(42, 64, 128, 1 / 3, "grouped"), a)
    assert not np.array_equal(tg.ternary_matrix(42, 64, 128, 1 / 3, "iid"), a)


def test_group_size_and_limits():
    assert [tg.group_size(d) for d in (1.0, 0.5, 1 / 3, 0.3, 0.25, 1 / 128)] == [1, 2, 3, 3, 4, 128]
    with pytest.raises(ValueError, match="density >= 1/128"):
        tg.group_size(1 / 200)
    with pytest.raises(ValueError, match="pattern must be one of"):
        tg.ternary_matrix(1, 4, 4, 1 / 3, "blocky")
    with pytest.raises(UserError, match="pattern must be one of"):
        Topology(pattern="blocky")
    with pytest.raises(UserError, match="grouped pattern needs density"):
        Topology(pattern="grouped", density=1 / 300)
    assert Topology.from_dict({k: v for k, v in Topology().to_dict().items() if k != "pattern"}).pattern == "iid"


def test_checkpoint_with_unknown_pattern_is_refused_at_load(tmp_path):
    import json

    from ternkws.golden.checkpoint import load, resolve
    z = dict(np.load(resolve("default")))
    cfg = json.loads(str(z["__config__"]))
    cfg["topology"]["pattern"] = "blocky"
    z["__config__"] = np.array(json.dumps(cfg))
    np.savez(tmp_path / "bad.npz", **z)
    with pytest.raises(UserError, match="pattern must be one of"):
        load(tmp_path / "bad.npz")
    del cfg["topology"]["pattern"]                      # today's checkpoints: iid
    z["__config__"] = np.array(json.dumps(cfg))
    np.savez(tmp_path / "old.npz", **z)
    assert load(tmp_path / "old.npz").topology.pattern == "iid"


def test_cli_prints_the_grouped_matrix():
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "ternkws.cli", "ternary", "--seed", "3", "--shape", "16x64",
                          "--pattern", "grouped", "--json"], capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    assert np.array_equal(np.array(d["matrix"]), tg.grouped_matrix(3, 16, 64)) and d["pattern"] == "grouped"
