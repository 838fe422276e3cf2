"""`calibrate`: run the reference executor on calibration data and record activation ranges.

Every float tensor of `@main` (the inputs and every op result) gets a *streaming
histogram*: a fixed number of bins whose width is a power of two; when a batch falls
outside the covered range the width doubles and pairs of bins merge (exact, since
`floor(x / 2w) = floor(floor(x / w) / 2)`). Memory is `bins` counters per tensor
whatever the number of batches, and the final histogram equals the one-shot histogram
of all the data (same width: the smallest power of two whose bins cover the data).
The exact minimum and maximum are kept beside it.

A range `[lo, hi]` per tensor is derived from the histogram by one of:

- `minmax` — the exact min and max;
- `percentile` — clip |x| at the `percentile`-th percentile (99.99 by default);
- `mse` — the clip threshold T minimizing the expected squared error of quantizing
  with `bits`: (|x| − T)² beyond T, Δ²/12 inside (Δ = T / levels);
- `entropy` — TensorRT's KL-divergence threshold: T minimizing KL(P‖Q) between the
  |x| histogram clipped at T and its quantization to `2^(bits−1)` levels.

Clipping methods cut |x| at T, so the range is `[max(min, −T), min(max, T)]` (a
non-negative tensor keeps lo = min ≥ 0). They apply to the tensors the network
computes; `@main`'s inputs keep their min-max range unless `clip-inputs=true`: an
input's range is the data's (pixels in [0, 1]), and clipping it costs more than the
resolution it buys — on the digits models entropy calibration with clipped inputs
cuts 1.0 to 0.94 and loses 10–17 dB of logit SQNR (bench/bench_quant_accuracy.py).

Ranges are written on the IR, so they survive printing and any pass that keeps the
ops: a discardable attribute `quant.range = array<f64: lo, hi>` on the producing op
(two numbers per result for multi-result ops, NaN where a result has no statistics)
and, for `@main`'s arguments, the same key in the argument attributes:

Before:

    func.func @main(%x: tensor<1x64xf32>) -> tensor<1x10xf32> {
      %y = nn.linear %x, %w, %b : (...) -> tensor<1x10xf32>

After `calibrate{method=percentile}`:

    func.func @main(%x: tensor<1x64xf32> {quant.range = array<f64: 0.0, 1.0>}) -> ... {
      %y = nn.linear %x, %w, %b {quant.range = array<f64: -7.41, 9.02>} : (...) -> ...

The data: the pass option `data=calib.npz` (arrays keyed by input name, first axis =
samples; see `calibration_from_npz`), else data attached with `set_calibration_data`
(what `irflow run/opt --calib` does), else `samples` seeded standard-normal inputs
(with a warning: random data only exercises the pipeline, it is no calibration).
Python API: `calibrate(module, batches, method=...) -> Calibration`.

What it does not do: it does not change any op or type (only attributes), and it
does not observe weights (constants are quantized from their own values).

This module holds the results (`Calibration`, `quant.range` on the IR), the run and the
pass; the histogram and the range methods are `calibrate_histogram.py`, the data
sources `calibrate_data.py`, both importable from here as before.
"""


from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    ModuleOp,
    TensorType,
    f64,
)
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from irflow.blas import single_threaded_blas
from irflow.diagnostics import IrflowError, PassError
from irflow.graph import main_func
from irflow.passes.calibrate_data import (
    attached_calibration_data,
    calibration_from_npz,
    random_batches,
    set_calibration_data,
)
from irflow.passes.calibrate_histogram import (
    DEFAULT_BINS,
    METHODS,
    StreamingHistogram,
    select_range,
)
from irflow.progress import Progress
from irflow.weights import numpy_dtype

RANGE_ATTR = "quant.range"

Batch = Mapping[str, np.ndarray]


# --------------------------------------------------------------------------------------
# Calibration results


def value_label(value: SSAValue) -> str:
    """A readable name for a tensor in messages: `%name (result of nn.conv2d at loc)`."""
    from irflow.diagnostics import location_string

    hint = f"%{value.name_hint}" if value.name_hint else "an unnamed tensor"
    owner = value.owner
    if isinstance(owner, Operation):
        where = location_string(owner.location)
        return f"{hint} (result of {owner.name}{f' at {where}' if where else ''})"
    return f"{hint} (function argument)"


@dataclass
class Calibration:
    """Per-tensor histograms of one calibration run; ranges for any method on demand."""

    histograms: dict[SSAValue, StreamingHistogram]
    method: str = "minmax"
    percentile: float = 99.99
    bits: int = 8
    symmetric: bool = False
    batches: int = 0
    clip_inputs: bool = False
    _cache: dict[tuple[SSAValue, str], tuple[float, float]] = field(default_factory=dict)

    def range(self, value: SSAValue, method: str | None = None) -> tuple[float, float]:
        method = method or self.method
        if not self.clip_inputs and not isinstance(value.owner, Operation):
            method = "minmax"  # a graph input keeps the data's range (see the module doc)
        key = (value, method)
        if key not in self._cache:
            self._cache[key] = select_range(
                self.histograms[value], method, percentile=self.percentile, bits=self.bits,
                symmetric=self.symmetric,
            )
        return self._cache[key]

    def ranges(self, method: str | None = None) -> dict[str, tuple[float, float]]:
        """Ranges by readable tensor label (for printing and tests)."""
        return {value_label(v): self.range(v, method) for v in self.histograms}

    def nbytes(self) -> int:
        return sum(h.nbytes for h in self.histograms.values())

    def apply(self, module: ModuleOp, method: str | None = None) -> None:
        """Write `quant.range` attributes for `method` (default: this calibration's)."""
        f = main_func(module)
        block = f.body.blocks[0]
        arg_dicts = []
        for i, arg in enumerate(block.args):
            old = dict(f.arg_attrs.data[i].data) if f.arg_attrs is not None else {}
            if arg in self.histograms:
                old[RANGE_ATTR] = _range_attr([self.range(arg, method)])
            arg_dicts.append(DictionaryAttr(old))
        if arg_dicts:
            f.arg_attrs = ArrayAttr(arg_dicts)
        for op in block.ops:
            if not any(r in self.histograms for r in op.results):
                continue
            ranges = [self.range(r, method) if r in self.histograms else (math.nan, math.nan)
                      for r in op.results]
            op.attributes[RANGE_ATTR] = _range_attr(ranges)


def _range_attr(ranges: Sequence[tuple[float, float]]) -> DenseArrayBase:
    return DenseArrayBase.from_list(f64, [float(v) for r in ranges for v in r])


def recorded_range(value: SSAValue) -> tuple[float, float] | None:
    """The `quant.range` recorded on the IR for a value, or None."""
    owner = value.owner
    attr = None
    index = 0
    if isinstance(owner, Operation):
        attr = owner.attributes.get(RANGE_ATTR)
        index = value.index  # type: ignore[attr-defined]
    else:
        f = owner.parent_op() if owner is not None else None
        if isinstance(f, func.FuncOp) and f.arg_attrs is not None:
            index = value.index  # type: ignore[attr-defined]
            attr = f.arg_attrs.data[index].data.get(RANGE_ATTR)
            index = 0
    if not isinstance(attr, DenseArrayBase):
        return None
    values = attr.get_values()
    if len(values) < 2 * index + 2:
        return None
    lo, hi = float(values[2 * index]), float(values[2 * index + 1])
    return None if math.isnan(lo) or math.isnan(hi) else (lo, hi)


# --------------------------------------------------------------------------------------
# Running the calibration


def _is_float_tensor(value: SSAValue) -> bool:
    ty = value.type
    if not isinstance(ty, TensorType):
        return False
    try:
        return numpy_dtype(ty.element_type).kind == "f"
    except IrflowError:
        return False


def calibrate(module: ModuleOp, batches: Iterable[Batch] | Iterable[Sequence[np.ndarray]], *,
              method: str = "minmax", percentile: float = 99.99, bits: int = 8,
              symmetric: bool = False, bins: int = DEFAULT_BINS, apply: bool = True,
              progress: bool | None = None, clip_inputs: bool = False) -> Calibration:
    """Observe every float tensor of `@main` over `batches`; return the histograms.

        >>> cal = calibrate(module, [{"x": x0}, {"x": x1}], method="entropy")
        >>> cal.ranges()            # {"%x (function argument)": (0.0, 1.0), ...}

    With `apply` (default) the ranges of `method` are written on the IR as `quant.range`.
    """
    from irflow.backends.reference import compile_function

    if method not in METHODS:
        raise PassError(f"calibrate: unknown method '{method}' "
                        f"(expected one of {', '.join(METHODS)})")
    f = main_func(module)
    program = compile_function(module)
    args = list(f.body.blocks[0].args)
    hists: dict[SSAValue, StreamingHistogram] = {
        a: StreamingHistogram(bins) for a in args if _is_float_tensor(a)
    }
    watched: dict[Operation, list[tuple[int, StreamingHistogram]]] = {}
    for op in f.body.blocks[0].ops:
        if not op.operands:  # constants (weights) are quantized from their own values
            continue
        for i, r in enumerate(op.results):
            if _is_float_tensor(r):
                hists[r] = StreamingHistogram(bins)
                watched.setdefault(op, []).append((i, hists[r]))

    def observe(op: Operation, results: list[np.ndarray]) -> None:
        for i, h in watched.get(op, ()):
            _update(h, results[i], op.results[i])

    total = len(batches) if isinstance(batches, Sequence) else None
    bar = Progress(total, "calibrate", unit="batch", enabled=progress)
    n = 0
    for batch in batches:
        arrays = ([batch[k] for k in program.input_names] if isinstance(batch, Mapping)
                  else list(batch))
        with single_threaded_blas():  # many medium GEMMs: one BLAS thread is faster
            program.run(batch, observe=observe)
        for a, x in zip(args, arrays):
            if a in hists:
                _update(hists[a], x, a)
        n += 1
        bar.advance()
    bar.close()
    if n == 0:
        raise PassError("calibrate: no calibration batches were given")
    observed = {v: h for v, h in hists.items() if h.count}
    cal = Calibration(observed, method, percentile, bits, symmetric, n, clip_inputs)
    _CALIBRATIONS[module] = cal
    if apply:
        cal.apply(module)
    return cal


_CALIBRATIONS: weakref.WeakKeyDictionary[ModuleOp, Calibration] = weakref.WeakKeyDictionary()


def calibration_of(module: ModuleOp) -> Calibration | None:
    """The last `Calibration` computed on `module` in this process (histograms included)."""
    return _CALIBRATIONS.get(module)


def _update(h: StreamingHistogram, x: np.ndarray, value: SSAValue) -> None:
    try:
        h.update(x)
    except ValueError as e:
        raise PassError(f"calibrate: {value_label(value)}: {e}") from None


# --------------------------------------------------------------------------------------
# The pass


@dataclass(frozen=True)
class CalibratePass(ModulePass):
    """Record per-tensor activation ranges (`quant.range`) from calibration data.

    Options: `method` (minmax | percentile | mse | entropy), `percentile`, `bits` and
    `symmetric` (the quantization the MSE/entropy searches aim at), `bins`, `data`
    (an `.npz`), `samples`/`seed` (random inputs when no data is given), `clip-inputs`
    (let the clipping methods clip `@main`'s inputs too).
    """

    name = "calibrate"

    method: str = "minmax"
    percentile: float = 99.99
    bits: int = 8
    symmetric: bool = False
    bins: int = DEFAULT_BINS
    data: str | None = None
    samples: int = 4
    seed: int = 0
    clip_inputs: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PassError(f"option method: unknown method '{self.method}' "
                            f"(expected one of {', '.join(METHODS)})")
        if not 0 < self.percentile <= 100:
            raise PassError(f"option percentile must be in (0, 100], got {self.percentile}")
        if self.bits not in (4, 8):
            raise PassError(f"option bits must be 4 or 8, got {self.bits}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.data:
            batches = calibration_from_npz(op, self.data)
        elif (attached := attached_calibration_data(op)) is not None:
            batches = attached
        else:
            sys.stderr.write(
                f"warning: calibrate: no calibration data (--calib or data=); using "
                f"{self.samples} batches of seeded random inputs\n"
            )
            batches = random_batches(op, self.samples, self.seed)
        calibrate(op, batches, method=self.method, percentile=self.percentile, bits=self.bits,
                  symmetric=self.symmetric, bins=self.bins, clip_inputs=self.clip_inputs)


__all__ = [
    "RANGE_ATTR", "METHODS", "StreamingHistogram", "Calibration", "CalibratePass",
    "calibrate", "calibration_of", "calibration_from_npz", "random_batches", "set_calibration_data",
    "select_range", "recorded_range", "value_label",
]
