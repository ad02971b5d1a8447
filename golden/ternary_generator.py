"""The LFSR ternary generator: the sparse random {-1, 0, +1} matrix of every ternary 1x1 layer.

Contract (golden/SPEC.md section 1): a 64-bit Fibonacci LFSR with the primitive characteristic
polynomial x^64 + x^4 + x^3 + x + 1 produces a bit sequence b[0], b[1], ...; entry m of a matrix
(row-major, m = o * c_in + i) is the byte u = b[8m] + 2 b[8m+1] + ... + 128 b[8m+7] mapped by two
thresholds: u < t -> +1, t <= u < 2t -> -1, else 0, with t = round(128 * density) (so P(+1) = P(-1) =
t/256). The sequence restarts from the layer's seed state for every time frame, so the hardware
regenerates the same matrix each frame and stores none of it. P lanes consume P consecutive entries per
cycle: a leap-forward of 8P bits, whose XOR network `bit_masks` computes at elaboration.

Two patterns (golden/SPEC.md section 1, topology field `pattern`):

- "iid" (the paper's, and every checkpoint made before the field existed): every entry independent,
  one byte each, row-major.
- "grouped": the inputs of a row are cut into groups of M = round(1/density) consecutive channels and
  each group holds exactly one nonzero (the last, partial group of a row at most one), at a position and
  with a sign drawn from one byte; so every entry is still +1 or -1 with probability 1/(2M) each, and a
  mixer that walks the slots spends no cycle on a zero. Bytes are consumed in blocks of GROUP_ROWS = 8
  rows: slot (o, g) is byte ((o // 8) * G + g) * 8 + o % 8, so hardware that serves 8 rows per input
  group read takes 8 consecutive bytes (64 bits, one LFSR state) per cycle.
"""

import numpy as np

WIDTH = 64
# Characteristic polynomial x^64 + x^4 + x^3 + x + 1, written as the exponents below x^64.
TAPS = (4, 3, 1, 0)
BITS_PER_ENTRY = 8
DEFAULT_DENSITY = 1 / 3
PATTERNS = ("iid", "grouped")
GROUP_ROWS = 8          # "grouped": rows whose slots of one input group are consecutive bytes
GROUP_MAX = 128         # "grouped": M <= 128, so that 7 bits of a byte can pick any position
POSITION_BITS = 7       # "grouped": bits 1..7 of a slot's byte pick the position, bit 0 the sign
_MASK64 = (1 << 64) - 1


def splitmix64(x):
    """SplitMix64 finaliser (Steele, Lea, Flood 2014): a seed -> a well-mixed 64-bit word."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def seed_state(seed, width=WIDTH):
    """The LFSR's initial state for a seed (a non-negative integer < 2^64); never the all-zero state."""
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be an integer in [0, 2^64), not {seed}")
    state = splitmix64(seed) & ((1 << width) - 1)
    return state if state else 1


def lfsr_bits(state, count, width=WIDTH, taps=TAPS):
    """The first `count` bits b[0..count) of the sequence whose first `width` bits are `state` (LSB = b[0]).

    b[n + width] = XOR over k in taps of b[n + k].
    """
    if state == 0 or state >> width:
        raise ValueError(f"LFSR state must be a non-zero {width}-bit integer")
    bits = np.zeros(max(count, width), dtype=np.uint8)
    bits[:width] = [(state >> j) & 1 for j in range(width)]
    # New bits depend on bits at least (width - max(taps)) back: fill that many per vector step.
    step = width - max(taps)
    for start in range(width, count, step):
        end = min(start + step, count)
        acc = np.zeros(end - start, dtype=np.uint8)
        for k in taps:
            acc ^= bits[start - width + k:end - width + k]
        bits[start:end] = acc
    return bits[:count]


def threshold(density):
    """Integer threshold t for a density in (0, 1]: P(+1) = P(-1) = t/256, realised density t/128."""
    density = float(density)
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], not {density}")
    return min(128, max(1, int(np.floor(density * 128 + 0.5))))


def realized_density(density):
    return threshold(density) / 128


def entries_from_bytes(u, density=DEFAULT_DENSITY):
    t = threshold(density)
    u = np.asarray(u, dtype=np.int32)
    return np.where(u < t, 1, np.where(u < 2 * t, -1, 0)).astype(np.int8)


def ternary_entries(seed, count, density=DEFAULT_DENSITY):
    """The first `count` entries of the generator seeded with `seed`, in consumption order."""
    bits = lfsr_bits(seed_state(seed), count * BITS_PER_ENTRY).reshape(count, BITS_PER_ENTRY)
    u = bits.astype(np.int32) @ (1 << np.arange(BITS_PER_ENTRY, dtype=np.int32))
    return entries_from_bytes(u, density)


def ternary_matrix(seed, c_out, c_in, density=DEFAULT_DENSITY, pattern="iid"):
    """The (c_out, c_in) int8 matrix of a ternary 1x1 layer. "iid": entry [o, i] is entry o * c_in + i;
    "grouped": grouped_matrix."""
    if c_out < 1 or c_in < 1:
        raise ValueError(f"matrix shape must be positive, not {c_out}x{c_in}")
    if check_pattern(pattern) == "grouped":
        return grouped_matrix(seed, c_out, c_in, density)
    return ternary_entries(seed, c_out * c_in, density).reshape(c_out, c_in)


def check_pattern(pattern):
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, not {pattern!r}")
    return pattern


def group_size(density):
    """M of the "grouped" pattern: round(1 / density), in [1, GROUP_MAX]; realised density 1/M."""
    density = float(density)
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], not {density}")
    m = int(np.floor(1.0 / density + 0.5))
    if m > GROUP_MAX:
        raise ValueError(f"the grouped pattern needs density >= 1/{GROUP_MAX} (groups of at most "
                         f"{GROUP_MAX} inputs), not {density}")
    return max(1, m)


def groups_per_row(c_in, density):
    """G = ceil(c_in / M): the slots of one row (the last group is partial when M does not divide c_in)."""
    m = group_size(density)
    return -(-int(c_in) // m)


def row_blocks(c_out):
    """Blocks of GROUP_ROWS rows per matrix (the last one partial when 8 does not divide c_out)."""
    return -(-int(c_out) // GROUP_ROWS)


def slot_bytes(c_out, c_in, density):
    """Bytes one "grouped" matrix consumes: row_blocks * G * 8 (rows past c_out in a partial last block
    consume their bytes too, unused)."""
    return row_blocks(c_out) * groups_per_row(c_in, density) * GROUP_ROWS


def position_of(u, m):
    """Position in its group of a slot's byte u: floor((u >> 1) * M / 128); thresholds ceil(128 k / M)."""
    return (np.asarray(u, dtype=np.int64) >> 1) * m >> POSITION_BITS


def sign_of(u):
    """Sign of a slot's byte u: +1 for an even byte, -1 for an odd one (exactly balanced)."""
    return (1 - 2 * (np.asarray(u, dtype=np.int64) & 1)).astype(np.int8)


def position_probabilities(m):
    """Exact probability of each position 0..M-1 over a uniform byte: (count of 7-bit w) / 128."""
    w = np.arange(1 << POSITION_BITS)
    return np.bincount(w * m >> POSITION_BITS, minlength=m) / (1 << POSITION_BITS)


def grouped_slots(seed, c_out, c_in, density=DEFAULT_DENSITY):
    """(position, sign) of every slot, each (c_out, G): the slot of row o, group g is byte
    ((o // 8) * G + g) * 8 + o % 8 of the generator's sequence."""
    if c_out < 1 or c_in < 1:
        raise ValueError(f"matrix shape must be positive, not {c_out}x{c_in}")
    m, g = group_size(density), groups_per_row(c_in, density)
    nb = row_blocks(c_out)
    bits = lfsr_bits(seed_state(seed), nb * g * GROUP_ROWS * BITS_PER_ENTRY)
    u = bits.reshape(-1, BITS_PER_ENTRY).astype(np.int64) @ (1 << np.arange(BITS_PER_ENTRY, dtype=np.int64))
    u = u.reshape(nb, g, GROUP_ROWS).transpose(0, 2, 1).reshape(nb * GROUP_ROWS, g)[:c_out]
    return position_of(u, m).astype(np.int64), sign_of(u)


def grouped_matrix(seed, c_out, c_in, density=DEFAULT_DENSITY):
    """The (c_out, c_in) int8 matrix of the "grouped" pattern: entry [o, g*M + p] = sign for slot (o, g)
    with position p, when g*M + p < c_in; every other entry 0."""
    pos, sign = grouped_slots(seed, c_out, c_in, density)
    m = group_size(density)
    col = np.arange(pos.shape[1]) * m + pos
    w = np.zeros((c_out, c_in + m), dtype=np.int8)
    np.put_along_axis(w, col, sign, axis=1)
    return w[:, :c_in].copy()


def bit_masks(count, width=WIDTH, taps=TAPS):
    """For k < count: the set of state bits (as an int mask) whose XOR is b[k] (state = b[0..width)).

    The hardware advances by n bits per cycle with new_state[j] = XOR of state bits in bit_masks(n + width)[n + j]
    and reads its n output bits from masks [0, n): a leap-forward computed at elaboration.
    """
    masks = [1 << j for j in range(min(count, width))]
    for n in range(width, count):
        m = 0
        for k in taps:
            m ^= masks[n - width + k]
        masks.append(m)
    return masks


def advance(state, n, width=WIDTH, taps=TAPS):
    """The state after n steps (the window b[n..n+width))."""
    out = 0
    for j, m in enumerate(bit_masks(n + width, width, taps)[n:n + width]):
        out |= (bin(m & state).count("1") & 1) << j
    return out


# --- period: algebraic proof for the 64-bit polynomial ---------------------------------------------

def _polymulmod(a, b, poly, deg):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a >> deg & 1:
            a ^= poly
    return r


def _polypowmod(base, e, poly, deg):
    r = 1
    while e:
        if e & 1:
            r = _polymulmod(r, base, poly, deg)
        base = _polymulmod(base, base, poly, deg)
        e >>= 1
    return r


def polynomial(width=WIDTH, taps=TAPS):
    p = 1 << width
    for k in taps:
        p |= 1 << k
    return p


def is_primitive(width, taps, prime_factors):
    """True iff x^width + sum x^taps is primitive over GF(2), given the prime factors of 2^width - 1.

    Primitive <=> the LFSR's period is 2^width - 1 for every non-zero state.
    """
    poly, order = polynomial(width, taps), (1 << width) - 1
    x = 0b10
    if _polypowmod(x, order, poly, width) != 1:
        return False
    return all(_polypowmod(x, order // q, poly, width) != 1 for q in prime_factors)


PRIME_FACTORS_2_64_MINUS_1 = (3, 5, 17, 257, 641, 65537, 6700417)
