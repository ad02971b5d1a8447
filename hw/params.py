"""Argument checks shared by the RTL units.

Each check returns the value in the form the unit keeps (a plain int, a read-only int64 array, a tuple)
or raises TypeError (wrong kind of value) / ValueError (right kind, wrong value) with a sentence that
names the parameter and the bad value, e.g. "layer 1: kernel must be odd and >= 1, not 4". Units call
them at the top of `__init__`, before `wiring.Component.__init__`, so a refused configuration is never
half built.
"""

import numbers

import numpy as np

__all__ = ["check_int", "check_positive", "check_lanes", "check_bool", "check_int_array", "int_name",
           "check_sequence", "layer_fields"]


def check_int(value, what, *, low=None, high=None, kind="an integer", bounds=None):
    """`value` as an int in [low, high] (either bound may be None).

    TypeError "<what> must be <kind>, not <value!r>" unless `value` is an integer (Python or numpy; bool
    and floats are not); ValueError "<what> must be <bounds>, not <value>" outside the bounds, `bounds`
    defaulting to ">= low", "<= high" or "in [low, high]".
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be {kind}, not {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if bounds is None:
            bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ValueError(f"{what} must be {bounds}, not {value}")
    return value


def check_positive(value, what):
    """`value` as an int >= 1; "<what> must be a positive integer, not <value>" otherwise."""
    return check_int(value, what, low=1, kind="a positive integer", bounds="a positive integer")


def check_lanes(lanes):
    """`lanes` (parallel elements per beat) as a positive int."""
    return check_int(lanes, "lanes", low=1, kind="a positive integer", bounds="at least 1")


def check_bool(value, what):
    """`value` as a bool; TypeError unless it is True or False (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, not {value!r}")
    return bool(value)


def int_name(bits):
    """'int8' for 8 bits, else 'signed <bits>-bit'."""
    return "int8" if bits == 8 else f"signed {bits}-bit"


def check_int_array(value, what, *, bits, shape=None, shape_text=None):
    """`value` (array-like) as a read-only int64 array of signed `bits`-bit integers.

    ValueError when its shape is not `shape` (described as `shape_text` when given), when it holds
    anything but integers (integral floats pass), or when a value is outside the signed `bits`-bit range.
    """
    v = np.asarray(value)
    if shape is not None and v.shape != tuple(shape):
        raise ValueError(f"{what} must have shape {shape_text or tuple(shape)}, not {v.shape}")
    if v.dtype.kind not in "iub":
        if v.dtype.kind != "f" or not np.all(np.isfinite(v)) or not np.array_equal(v, np.round(v)):
            raise ValueError(f"{what} must hold integers, not {v.dtype} values")
    v = v.astype(np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"{what} must be {int_name(bits)}, in [{lo}, {hi}], not [{v.min()}, {v.max()}]")
    v.setflags(write=False)
    return v


def check_sequence(value, what, item, items=None):
    """`value` as a non-empty tuple; TypeError "<what> must be a sequence of <items>, not <value!r>" for
    a non-iterable or a string, ValueError "<what> must hold at least one <item>" when it is empty.
    `items` (the plural) defaults to `item` + "s"."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{what} must be a sequence of {items or item + 's'}, not {value!r}")
    value = tuple(value)
    if not value:
        raise ValueError(f"{what} must hold at least one {item}, not an empty sequence")
    return value


def layer_fields(layer, what, names, optional=()):
    """The fields `names` + `optional` of `layer`: a tuple/list of them (the optional ones may be left
    out: None) or an object with those attributes (a missing optional one: None). TypeError otherwise."""
    expected = "(" + ", ".join([*names, *(f"{name} or None" for name in optional)]) + ")"
    if isinstance(layer, (tuple, list)):
        if not len(names) <= len(layer) <= len(names) + len(optional):
            raise TypeError(f"{what}: expected {expected}, got a sequence of {len(layer)} items")
        return tuple(layer) + (None,) * (len(names) + len(optional) - len(layer))
    if all(hasattr(layer, name) for name in names):
        return tuple(getattr(layer, name) for name in names) + \
            tuple(getattr(layer, name, None) for name in optional)
    raise TypeError(f"{what}: expected {expected} or an object with those attributes, not {layer!r}")
