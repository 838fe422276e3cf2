"""Running a fused layer group depth-first (`accel.fused`, `fuse-layers`; docs/simulator.md §2.5).

The group's last layer produces its result `band` rows at a time. For each band,
`accel_fused.band_rows` gives the rows of every earlier layer's result that band
reads (through each consumer's window: a 3×3 conv needs one more row each side, a
stride-2 conv twice the rows); the layers then run in order, each restricted to its
rows (`run_layer(..., rows=...)`: the layer's own nest, its row loop clipped to the
band), so each band pulls just the tiles it needs. `overlap = "cache"` computes only
the rows no earlier band computed (the rows a window shares with the previous band
stay in the ring buffer: a line buffer); `"recompute"` computes every needed row
again (halo recompute: more MACs, counted).

Intermediates stay on chip: each lives in a ring buffer of `ring_rows` rows (its
row `h` in slot `h mod rows`) in a scratch region of the address space that no
tensor occupies and every group reuses. Its stores and loads are real accesses of
the one LRU cache at those ring addresses, so the buffers compete with the streamed
tiles for capacity: they hit while the group's working set fits (the pass forms only
groups whose rings fit half the cache) and cost DRAM traffic when they do not. The
values themselves are full-size arrays beside DRAM (the numerics of each band are the
layer's own tile kernels, on the same slices), so outputs equal the unfused
program's — bit for bit for integer layers.

Every (band, layer) is one `LayerTrace` (in depth-first order, so the cache sees the
interleaving) tagged with the group; `merge_groups` adds each layer's bands up into
one report row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue

from irflow.alloc import check_alloc
from irflow.backends.sim import executor as ex
from irflow.backends.sim.cache import CacheOutcome, LRUCache
from irflow.backends.sim.cost import LayerStats, total
from irflow.backends.sim.machine import Machine
from irflow.backends.sim.placement import _place, _PsumArea, _Tensor
from irflow.backends.sim.trace import LayerTrace, Role
from irflow.dialects import accel
from irflow.dialects import accel_fused as af
from irflow.weights import numpy_dtype

VIRTUAL = 1 << 50
"""Byte address where intermediate i is laid out whole (at (i + 1) · VIRTUAL) before its
accesses are folded into its ring buffer: far beyond any DRAM address."""
SCRATCH = 1 << 44
"""Byte address of the on-chip scratch region the ring buffers live in (beyond DRAM)."""


class _Ring:
    """Folds the cache lines of an intermediate laid out whole at `virtual` into its
    ring buffer of `rows` rows at `SCRATCH + offset` (row h in slot h mod rows)."""

    def __init__(self, shape: Sequence[int], bits: int, rows: int, offset: int,
                 virtual: int, line_bytes: int):
        self.h, self.w = shape[-2], shape[-1]
        self.bits, self.rows = bits, rows
        self.base = SCRATCH + offset
        self.virtual, self.line = virtual, line_bytes

    def fold(self, lines: np.ndarray) -> np.ndarray:
        """Ring lines of virtual `lines` (each line by its first element)."""
        elem = (lines * self.line - self.virtual) * 8 // self.bits
        outer, rem = np.divmod(elem, self.h * self.w)
        h, w = np.divmod(rem, self.w)
        ring = (outer * self.rows + h % self.rows) * self.w + w
        return (self.base + ring * self.bits // 8) // self.line


def run_group(op: accel.FusedOp, operands: Sequence[_Tensor], dram: np.ndarray,
              line_bytes: int, psum: _PsumArea,
              numerics: bool) -> tuple[_Tensor, list[LayerTrace]]:
    """Run group `op` band by band (module docstring): its result tensor (in DRAM) and
    one trace per (band, layer), in execution order."""
    layers = op.layers
    block = op.body.block
    values: dict[SSAValue, _Tensor] = dict(zip(block.args, operands))
    band = op.band.value.data
    recompute = op.overlap.data == "recompute"
    rings = af.ring_rows(layers, band)
    folds: list[_Ring] = []
    for i, (lay, rows) in enumerate(zip(layers[:-1], rings)):
        ty = lay.output.type
        assert isinstance(ty, TensorType)
        dtype, shape = numpy_dtype(ty.element_type), tuple(ty.get_shape())
        if numerics:
            check_alloc(shape, dtype, f"the on-chip result of layer '{lay.label.data}'")
            array = np.zeros(shape, dtype)
        else:
            array = np.broadcast_to(np.zeros((), dtype), shape)
        bits = accel.element_bits(ty.element_type)
        values[lay.output] = _Tensor(array, VIRTUAL * (i + 1), Role.OUTPUT, bits=(bits, 1))
        folds.append(_Ring(shape, bits, rows, lay.addr.value.data, VIRTUAL * (i + 1),
                           line_bytes))
    last = layers[-1]
    out = _place(dram, last.addr.value.data, last.output.type, Role.OUTPUT, last)
    values[last.output] = out
    extent = af.rows_shape(last)[-2]
    done = [0] * len(layers)  # rows of each layer computed so far (overlap = cache)
    traces: list[LayerTrace] = []
    first_band = [True] * len(layers)
    windows = [af.window(nxt) for nxt in layers[1:]]
    line_memo: dict[tuple, np.ndarray] = {}  # slice lines, shared by the bands
    for lo in range(0, extent, band):
        need = af.band_rows(layers, lo, min(lo + band, extent), windows)
        for i, (lay, (a, b)) in enumerate(zip(layers, need)):
            if not recompute:
                a = max(a, done[i])
            if a >= b:
                continue
            done[i] = max(done[i], b)
            loop = af.row_loop(lay)
            assert loop is not None
            trace = ex.run_layer(lay, [values[v] for v in lay.inputs], values[lay.output],
                                 line_bytes, psum, numerics, rows={loop: (a, b)},
                                 line_memo=line_memo)
            traces.append(_on_chip(trace, folds, op.label.data, line_bytes,
                                   first_band[i]))
            first_band[i] = False
    return out, traces


def _on_chip(trace: LayerTrace, folds: Sequence[_Ring], group: str, line_bytes: int,
             first: bool) -> LayerTrace:
    """The trace with its intermediate accesses folded into their ring buffers, tagged
    with the group; its compulsory bytes are the DRAM data it touches (weights only on
    a layer's first band)."""
    line = trace.line.copy()
    off_chip = np.ones(len(line), bool)
    for i, f in enumerate(folds):
        lo, hi = (VIRTUAL * (i + 1)) // line_bytes, (VIRTUAL * (i + 2)) // line_bytes
        sel = (line >= lo) & (line < hi)
        if sel.any():
            line[sel] = f.fold(line[sel])
            off_chip &= ~sel
    keep = off_chip & (line < SCRATCH // line_bytes)
    if not first:
        keep &= trace.role != int(Role.WEIGHT)
    compulsory = int(np.unique(line[keep]).size) * line_bytes
    return replace(trace, line=line, group=group, compulsory_bytes=compulsory)


def service(cache: LRUCache, traces: Sequence[LayerTrace]) -> list[CacheOutcome]:
    """`cache.access` for one fused group's band traces (in one call), split per trace.
    The ring buffers behave as a scratchpad: a store that misses allocates its line
    without reading DRAM (the band writes whole rows), and after the group's last band
    its ring lines are dead: they are dropped dirty, never written back. Lines the cache
    evicted in between (the rings did not fit beside the streamed tiles) were written
    back and re-read: that traffic stays."""
    line = np.concatenate([t.line for t in traces])
    write = np.concatenate([t.write for t in traces])
    outcome = cache.access(line, write)
    scratch = SCRATCH // cache.geometry.line_bytes
    outcome.hit |= (line >= scratch) & write
    cache._dirty &= cache._lines < scratch
    out = []
    start = 0
    for t in traces:
        end = start + len(t.line)
        out.append(CacheOutcome(outcome.hit[start:end], outcome.evict[start:end],
                                outcome.writeback[start:end]))
        start = end
    return out


def merge_groups(stats: Sequence[LayerStats], traces: Sequence[LayerTrace],
                 machine: Machine) -> list[LayerStats]:
    """One row per layer: the bands of each fused group's layer added up (`cost.total`,
    keeping the layer's own op, unit, type and mapping), at its first band's place, with
    the group's bands timed as one pipeline (`_pipeline`)."""
    out: list[LayerStats | tuple[str, str]] = []
    parts: dict[tuple[str, str], list[LayerStats]] = {}
    runs: dict[str, list[tuple[str, LayerStats]]] = {}
    for s, t in zip(stats, traces):
        if not t.group:
            out.append(s)
            continue
        key = (t.group, t.name)
        if key not in parts:
            parts[key] = []
            out.append(key)
        parts[key].append(s)
        runs.setdefault(t.group, []).append((t.name, s))
    out += stats[len(traces):]  # the final flush
    cycles: dict[tuple[str, str], int] = {}
    for group, seq in runs.items():
        for name, c in _pipeline(seq).items():
            cycles[group, name] = c
    merged: list[LayerStats] = []
    for item in out:
        if isinstance(item, LayerStats):
            merged.append(item)
            continue
        ps = parts[item]
        first = ps[0]
        t = total(ps, machine, name=first.name)
        c = cycles[item]
        note = (f"fused group '{item[0]}': {len(ps)} band{'s' if len(ps) > 1 else ''}, "
                f"intermediates on chip")
        merged.append(replace(t, op=first.op, unit=first.unit, dtype=first.dtype,
                              mapping=first.mapping, loc=first.loc, timeline=None,
                              notes=(*first.notes, note), cycles=c,
                              stall_cycles=c - t.compute_cycles,
                              latency_ms=machine.cycles_to_ms(c),
                              roofline_bound=first.roofline_bound))
    return merged


def _pipeline(seq: Sequence[tuple[str, LayerStats]]) -> dict[str, int]:
    """Cycles per layer of a group's bands run as one double-buffered pipeline: the
    steps of all its (band, layer) runs in order, each run's first loads overlapping
    the previous run's last step and the previous run's last stores overlapping its
    first step (docs/simulator.md §2.5); a step's `max(compute, memory phase)` is
    charged to its layer, the exposed first load to the first layer, the drain to the
    last."""
    comp: list[np.ndarray] = []
    over: list[np.ndarray] = []
    owner: list[str] = []
    tls = [s.timeline for _, s in seq]
    assert all(tl is not None for tl in tls)
    for k, ((name, _), tl) in enumerate(zip(seq, tls)):
        assert tl is not None
        n = len(tl.compute_cycles)
        c = tl.compute_cycles.astype(np.int64)
        m = tl.memory_cycles.astype(np.int64)
        ov = m[1: n + 1].copy()
        if k > 0 and n:
            prev = tls[k - 1]
            assert prev is not None
            ov[0] += int(prev.memory_cycles[-1])  # the previous run's drain
            if over and len(over[-1]):
                over[-1][-1] += int(m[0])  # this run's first loads
        comp.append(c)
        over.append(ov)
        owner += [name] * n
    first, last = tls[0], tls[-1]
    assert first is not None and last is not None
    times = np.maximum(np.concatenate(comp), np.concatenate(over))
    out: dict[str, int] = {}
    for name, t in zip(owner, times.tolist()):
        out[name] = out.get(name, 0) + int(t)
    out[seq[0][0]] = out.get(seq[0][0], 0) + int(first.memory_cycles[0])
    out[seq[-1][0]] = out.get(seq[-1][0], 0) + int(last.memory_cycles[-1])
    return out


def group_macs(traces: Sequence[LayerTrace]) -> int:
    """MACs the fused groups' bands ran (halo recompute included)."""
    return sum(t.macs for t in traces if t.group)


__all__ = ["run_group", "merge_groups", "service", "group_macs", "VIRTUAL", "SCRATCH"]
