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
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from irflow.graph import input_names, main_func
from irflow.progress import Progress
from irflow.weights import numpy_dtype, read_npz

RANGE_ATTR = "quant.range"
METHODS = ("minmax", "percentile", "mse", "entropy")
DEFAULT_BINS = 2048
_MIN_WIDTH_EXP = -60  # bins never get narrower than 2^-60

Batch = Mapping[str, np.ndarray]


# --------------------------------------------------------------------------------------
# Streaming histogram


class StreamingHistogram:
    """Counts of `floor(x / width)` over a window of `bins` bins; width a power of two.

        >>> h = StreamingHistogram(); h.update(np.array([0.1, -2.0, 3.5]))
        >>> h.min, h.max, h.count
        (-2.0, 3.5, 3)
    """

    def __init__(self, bins: int = DEFAULT_BINS):
        if bins < 16:
            raise ValueError(f"a histogram needs at least 16 bins, got {bins}")
        self.bins = bins
        self.width_exp = _MIN_WIDTH_EXP
        self.start = 0  # global index of counts[0]
        self.counts = np.zeros(bins, np.int64)
        self.min = math.inf
        self.max = -math.inf
        self.count = 0

    @property
    def width(self) -> float:
        return math.ldexp(1.0, self.width_exp)

    @property
    def nbytes(self) -> int:
        return int(self.counts.nbytes)

    def _fits(self, lo: float, hi: float, exp: int) -> bool:
        w = math.ldexp(1.0, exp)
        return math.floor(hi / w) - math.floor(lo / w) < self.bins

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x).ravel()
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("non-finite values (inf or nan)")
        new_lo, new_hi = min(self.min, lo), max(self.max, hi)
        exp = self.width_exp
        if self.count == 0:
            span = new_hi - new_lo
            if span > 0:  # start below the answer; the loop below finds the smallest fit
                exp = max(_MIN_WIDTH_EXP, math.floor(math.log2(span / self.bins)) - 1)
        # bin indices are int64: |x| / width < 2^62 (only binds when the data is constant,
        # e.g. a one-element first batch, whose span sets no width)
        exp = max(exp, math.frexp(max(abs(new_lo), abs(new_hi)))[1] - 62)
        while not self._fits(new_lo, new_hi, exp):
            exp += 1
        w = math.ldexp(1.0, exp)
        new_start = math.floor(new_lo / w)
        if self.count and (exp != self.width_exp or new_start != self.start):
            nz = np.nonzero(self.counts)[0]
            old_g = self.start + nz
            new_g = old_g >> (exp - self.width_exp)  # floor division by 2^k, exact
            merged = np.zeros(self.bins, np.int64)
            np.add.at(merged, new_g - new_start, self.counts[nz])
            self.counts = merged
        self.width_exp, self.start = exp, new_start
        idx = np.floor(x.astype(np.float64) / w).astype(np.int64) - new_start
        self.counts += np.bincount(idx, minlength=self.bins)
        self.min, self.max = new_lo, new_hi
        self.count += int(x.size)

    def dense(self) -> tuple[float, int, np.ndarray]:
        """(width, first global bin index, counts) trimmed to the occupied bins — canonical:
        two histograms of the same data compare equal whatever the batching."""
        nz = np.nonzero(self.counts)[0]
        if nz.size == 0:
            return self.width, 0, np.zeros(0, np.int64)
        return self.width, self.start + int(nz[0]), self.counts[nz[0]: nz[-1] + 1].copy()

    def abs_counts(self) -> tuple[np.ndarray, float]:
        """Counts of |x| on bins [a·w', (a+1)·w'), a = 0, 1, …, and the width w'.

        Negative bins fold over (bin g < 0 holds |x| in ((−g−1)·w, −g·w]); when the data
        sits far from 0 relative to the width, bins merge by powers of two (exactly, as in
        `update`) until [0, max |x|] spans at most 2·`bins` bins."""
        g = self.start + np.arange(self.bins)
        reach = max(abs(int(g[0])), abs(int(g[-1])) + 1)
        k = max(0, math.ceil(math.log2(reach / (2 * self.bins)))) if reach > 2 * self.bins else 0
        a = np.where(g >= 0, g >> k, (-g - 1) >> k)
        out = np.zeros(int(a.max()) + 1, np.int64)
        np.add.at(out, a, self.counts)
        nz = np.nonzero(out)[0]
        return (out[: nz[-1] + 1] if nz.size else out[:1]), math.ldexp(self.width, k)


# --------------------------------------------------------------------------------------
# Range selection


def _levels(h: StreamingHistogram, bits: int, symmetric: bool) -> int:
    """Quantization steps that cover [0, T] for this tensor."""
    if symmetric:
        return (1 << (bits - 1)) - 1
    return (1 << bits) - 1 if h.min >= 0 else ((1 << bits) - 1) // 2


def _clip_range(h: StreamingHistogram, t: float) -> tuple[float, float]:
    lo = h.min if h.min >= 0 else max(h.min, -t)
    return lo, max(min(h.max, t), lo)


def percentile_threshold(h: StreamingHistogram, percentile: float) -> float:
    counts, width = h.abs_counts()
    cdf = np.cumsum(counts)
    i = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
    return min((i + 1) * width, max(abs(h.min), abs(h.max)))


def mse_threshold(h: StreamingHistogram, bits: int, symmetric: bool,
                  candidates: int = 512) -> float:
    """The clip T whose range `_clip_range(h, T)` minimizes the expected squared error:
    (x − bound)² for x outside the range, step²/12 inside, summed over the signed bins.
    The step is the one `quantize` will use: T / (2^(bits−1) − 1) symmetric (T / (2^bits
    − 1) for a non-negative tensor, stored unsigned), (hi − lo) / (2^bits − 1) otherwise."""
    nz = np.nonzero(h.counts)[0]
    counts = h.counts[nz].astype(np.float64)
    centers = (h.start + nz + 0.5) * h.width
    amax = max(abs(h.min), abs(h.max))
    ts = np.linspace(amax / candidates, amax, candidates)
    lo = np.zeros_like(ts) if h.min >= 0 else np.maximum(h.min, -ts)
    hi = np.minimum(h.max, ts)
    if symmetric:
        step = ts / _levels(h, bits, symmetric)
    else:
        step = (hi - lo) / ((1 << bits) - 1)
    c = centers[None, :]
    err = np.where(c < lo[:, None], (lo[:, None] - c) ** 2,
                   np.where(c > hi[:, None], (c - hi[:, None]) ** 2, (step**2 / 12.0)[:, None]))
    return float(ts[int(np.argmin(err @ counts))])


def entropy_threshold(h: StreamingHistogram, bits: int, max_candidates: int = 256) -> float:
    """TensorRT's entropy calibration on the |x| histogram (KL(P‖Q), smoothed).

    As NVIDIA's pytorch-quantization does, the zero bin's count is replaced by its
    neighbour's (a post-ReLU tensor's spike of exact zeros would otherwise dominate
    the first chunk and pull the threshold down), and a non-negative tensor gets
    `2^bits` levels (it is stored unsigned), a signed one `2^(bits−1)` per side.
    """
    counts, width = h.abs_counts()
    hist = counts.astype(np.float64)
    if len(hist) > 1:
        hist[0] = hist[1]
    nq = 1 << (bits - 1 + int(h.min >= 0))
    n = len(hist)
    if n <= nq:
        return max(abs(h.min), abs(h.max))
    step = max(1, (n - nq) // max_candidates)
    best_i, best_kl = n, math.inf
    total_tail = np.cumsum(hist[::-1])[::-1]  # total_tail[i] = hist[i:].sum()
    for i in range(nq, n + 1, step):
        p = hist[:i].copy()
        if i < n:
            p[-1] += total_tail[i]
        chunk = (np.arange(i) * nq) // i
        src = hist[:i]
        nonzero = src > 0
        sums = np.bincount(chunk, weights=src, minlength=nq)
        nz = np.bincount(chunk, weights=nonzero, minlength=nq)
        q = np.where(nonzero, sums[chunk] / np.maximum(nz[chunk], 1), 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return min(best_i * width, max(abs(h.min), abs(h.max)))


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(P‖Q) with TensorRT-style smoothing: zero bins get eps, taken from the others."""

    def smooth(d: np.ndarray) -> np.ndarray:
        zero = d == 0
        nz = int((~zero).sum())
        if nz == 0:
            return d
        d = d / d.sum()
        take = eps * zero.sum() / nz
        return np.where(zero, eps, d - take)

    ps, qs = smooth(p), smooth(q)
    mask = ps > 0
    return float(np.sum(ps[mask] * np.log(ps[mask] / np.maximum(qs[mask], 1e-12))))


def select_range(h: StreamingHistogram, method: str, *, percentile: float = 99.99,
                 bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
    """The range `[lo, hi]` a method picks from a histogram."""
    if h.count == 0:
        raise ValueError("no data was observed")
    if method == "minmax":
        return h.min, h.max
    if method == "percentile":
        return _clip_range(h, percentile_threshold(h, percentile))
    if method == "mse":
        return _clip_range(h, mse_threshold(h, bits, symmetric))
    if method == "entropy":
        return _clip_range(h, entropy_threshold(h, bits))
    raise ValueError(f"unknown calibration method '{method}' (expected one of {METHODS})")


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
# Data sources


def calibration_from_npz(module: ModuleOp, path: str | Path, batch_size: int | None = None
                         ) -> list[dict[str, np.ndarray]]:
    """Split an `.npz` of calibration samples into batches `@main` accepts.

    Arrays are keyed by input name with the samples on the first axis; each sample must
    have the input's shape without its batch dimension. Batches take the IR's batch
    size (the first dimension of the inputs; `batch_size` must equal it if given);
    trailing samples that do not fill a batch are dropped. A missing, extra or
    mis-shaped array is a `PassError` naming the input.
    """
    f = main_func(module)
    names = input_names(f)
    shapes = [tuple(a.type.get_shape()) for a in f.body.blocks[0].args]  # type: ignore[attr-defined]
    arrays = read_npz(path, "calibration data", PassError)
    extra = [k for k in arrays if k not in names]
    if extra:
        raise PassError(f"{path}: array '{extra[0]}' is not an input of @main "
                        f"(inputs: {', '.join(names)})")
    counts = set()
    for name, shape in zip(names, shapes):
        if name not in arrays:
            raise PassError(f"{path}: no array for input '{name}' (expected shape "
                            f"[N, {', '.join(map(str, shape[1:]))}], samples first)")
        a = arrays[name]
        if a.ndim != len(shape) or tuple(a.shape[1:]) != shape[1:]:
            raise PassError(
                f"{path}: input '{name}' expects samples of shape {list(shape[1:])} "
                f"(array [N, {', '.join(map(str, shape[1:]))}]), got {list(a.shape)}"
            )
        counts.add(a.shape[0])
    if len(counts) > 1:
        raise PassError(f"{path}: inputs have different sample counts {sorted(counts)}")
    n = counts.pop() if counts else 0
    b = shapes[0][0] if shapes and shapes[0] else 1
    if batch_size is not None and batch_size != b:
        raise PassError(f"{path}: batch size {batch_size} does not match the model's batch "
                        f"dimension {b} (re-import with that batch size)")
    if n < b:
        raise PassError(f"{path}: {n} samples cannot fill one batch of {b}")
    return [{k: arrays[k][i: i + b] for k in names} for i in range(0, n - b + 1, b)]


def random_batches(module: ModuleOp, samples: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`samples` batches of seeded standard-normal inputs (exercises a pipeline, no more)."""
    f = main_func(module)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        batch = {}
        for name, arg in zip(input_names(f), f.body.blocks[0].args):
            ty = arg.type
            assert isinstance(ty, TensorType)
            dtype = numpy_dtype(ty.element_type)
            shape = tuple(ty.get_shape())
            batch[name] = (rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                           else np.zeros(shape, dtype))
        out.append(batch)
    return out


_ATTACHED: weakref.WeakKeyDictionary[ModuleOp, list[dict[str, np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)


def set_calibration_data(module: ModuleOp, batches: list[dict[str, np.ndarray]]) -> None:
    """Attach calibration batches to a module; the `calibrate` pass uses them (CLI --calib)."""
    _ATTACHED[module] = batches


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
        elif op in _ATTACHED:
            batches = _ATTACHED[op]
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
