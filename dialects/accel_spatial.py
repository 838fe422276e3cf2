"""Iteration spaces of the n-D spatial and data-movement ops; `accel.layer_space`
delegates these kinds here (formulas and costs: docs/accel.md §1, docs/simulator.md §2.3).

PE array
- `nn.conv_transpose` (1-/2-/3-D): the equivalent stride-1 convolution over the
  zero-inserted input — loops n, g, f, oh, ow, c like `nn.conv2d` (3-D: od before oh),
  MACs per point = the kernel's taps (the array multiplies the inserted zeros too). An
  output tile reads the input rows its zero-inserted window covers (`table` axes); the
  weight is seen as (G, C/G, F/G, *kernel).
- `nn.einsum`, two operands, a (batched) contraction whose batch, free and contracted
  letters each sit together in every operand in one order: the matmul space b, m, n, k.

Vector unit
- `nn.pool` (n-D max/avg/Lp): loops n, c and the output's spatial axes (`ow`; `oh, ow`;
  `od, oh, ow`), windows on them; ops per point = the window's taps (Lp: 2 per tap).
- `nn.resize`: loops over the output axes; a resized axis reads, per output index, the
  input rows its taps name (`table`); ops per point = Σ taps over the resized axes
  (nearest: 1).
- `nn.lrn`: loops over every axis, the channel axis read through a window of `size`.
- `nn.trilu`, `nn.one_hot` (the depth axis whole), and every other `nn.einsum`
  (loops = its output axes, summed axes whole).

DMA (copies)
- `nn.expand`, `nn.tile`, `nn.pad` (all modes): per output axis the input index it
  copies (numpy's own pad/tile on `arange`), `table` axes (constant padding reads
  nothing); `nn.depth_to_space`, `nn.space_to_depth`: transposes of 6-D views;
- `nn.gather_elements`, `nn.scatter_elements`: loops over the non-indexed axes, the
  indexed axis whole; `nn.gather_nd`, `nn.scatter_nd`: loops over the batch/index rows
  and trailing axes, the indexed axes whole. The addresses inside the whole axes depend
  on the data, so a step loads them whole: a tile that cannot fit the cache gets the
  tile pass's warning, never a pretended fit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.ir import Attribute
from xdsl.utils.exceptions import VerifyException

from irflow.dialects import accel, nn
from irflow.dialects.nn.spatial import window_params

Shape = tuple[int, ...]

PE_KINDS = frozenset({"nn.conv_transpose"})
VECTOR_KINDS = frozenset({"nn.pool", "nn.resize", "nn.lrn", "nn.trilu", "nn.one_hot"})
COPY_KINDS = frozenset({"nn.expand", "nn.tile", "nn.pad", "nn.depth_to_space",
                        "nn.space_to_depth", "nn.gather_elements", "nn.gather_nd",
                        "nn.scatter_elements", "nn.scatter_nd"})
KINDS = PE_KINDS | VECTOR_KINDS | COPY_KINDS | {"nn.einsum"}

SPATIAL_NAMES = {1: ("ow",), 2: ("oh", "ow"), 3: ("od", "oh", "ow")}
"""Loop names of the output's spatial axes of an n-D window op."""


def spatial_space(kind: str, shapes: Sequence[Shape], out: Shape,
                  params: Mapping[str, Attribute]) -> accel.Space:
    if kind == "nn.conv_transpose":
        return _conv_transpose(shapes, out, params)
    if kind == "nn.einsum":
        return einsum_space(nn.prop_str(params, "equation", ""), shapes, out)
    if kind == "nn.pool":
        return _pool(shapes[0], out, params)
    if kind == "nn.resize":
        return _resize(shapes[0], out, params)
    if kind == "nn.lrn":
        size = nn.prop_int(params, "size", 1)
        ext = _loops(out)
        axes = [accel.on(f"d{i}") for i in range(len(out))]
        axes[1] = accel.Axis("window", "d1", 1, 1, size, (size - 1) // 2)
        return accel.Space(kind, "vector", tuple(ext), ext, (accel.Access(out, tuple(axes)),),
                           _ident(out), ops_per_point=size)
    if kind == "nn.trilu":
        ext = _loops(out)
        return accel.Space(kind, "vector", tuple(ext), ext, (_ident(out),), _ident(out),
                           ops_per_point=1)
    if kind == "nn.one_hot":
        axis = nn.prop_int(params, "axis", -1) % len(out)
        ext = {f"d{i}": s for i, s in enumerate(out) if i != axis}
        idx = accel.Access(shapes[0], tuple(accel.on(f"d{i + (i >= axis)}")
                                            for i in range(len(shapes[0]))))
        values = accel.Access(shapes[1], tuple(accel.FULL for _ in shapes[1]))
        y = accel.Access(out, tuple(accel.FULL if i == axis else accel.on(f"d{i}")
                                    for i in range(len(out))))
        return accel.Space(kind, "vector", tuple(ext), ext, (idx, values), y,
                           ops_per_point=out[axis])
    if kind in ("nn.expand", "nn.tile", "nn.pad"):
        return _index_copy(kind, shapes[0], out, params)
    if kind in ("nn.depth_to_space", "nn.space_to_depth"):
        return _rearrange(kind, shapes[0], out, params)
    if kind in ("nn.gather_elements", "nn.scatter_elements"):
        return _elements(kind, shapes, out, params)
    if kind == "nn.gather_nd":
        return _gather_nd(shapes, out, params)
    return _scatter_nd(shapes, out)


def _loops(shape: Shape, skip: Sequence[int] = ()) -> dict[str, int]:
    return {f"d{i}": s for i, s in enumerate(shape) if i not in skip}


def _ident(shape: Shape, full: Sequence[int] = ()) -> accel.Access:
    return accel.Access(tuple(shape), tuple(accel.FULL if i in full else accel.on(f"d{i}")
                                            for i in range(len(shape))))


def table_axis(dim: str, starts: np.ndarray, stops: np.ndarray, size: int) -> accel.Axis:
    """A `table` axis: loop index i reads rows [starts[i], stops[i]) (an empty entry,
    start >= stop, reads nothing and is stored as (size, 0))."""
    rows = tuple((int(a), int(b)) if b > a else (size, 0) for a, b in zip(starts, stops))
    return accel.Axis("table", dim, table=rows)


def source_axis(dim: str, src: np.ndarray, size: int) -> accel.Axis:
    """The axis of a copy whose output index i reads input index src[i] (-1: none)."""
    if src.size == size and np.array_equal(src, np.arange(size)):
        return accel.on(dim)
    if size == 1 and not (src < 0).any():
        return accel.ZERO
    return table_axis(dim, src, np.where(src >= 0, src + 1, -1), size)


# --------------------------------------------------------------------------------------
# PE array


def conv_transpose_geometry(params: Mapping[str, Attribute], x: Shape, w: Shape
                            ) -> list[tuple[int, int, int, int, int]]:
    """Per spatial axis (a 1-D op gets a unit H axis first): (input size, stride,
    dilation, kernel, P) with P = dilation·(kernel − 1) − pad_begin, the leading padding
    of the equivalent stride-1 convolution over the zero-inserted input."""
    nd = len(x) - 2
    strides, pads, dil = window_params(params, nd)
    axes = [(x[2 + i], strides[i], dil[i], w[2 + i], dil[i] * (w[2 + i] - 1) - pads[i])
            for i in range(nd)]
    return [(1, 1, 1, 1, 0)] * max(0, 2 - nd) + axes


def _conv_transpose(shapes: Sequence[Shape], out: Shape,
                    params: Mapping[str, Attribute]) -> accel.Space:
    x, w = shapes[0], shapes[1]
    if len(x) not in (3, 4, 5):
        raise VerifyException(f"accel.layer has no tiled form for a {len(x) - 2}-D "
                              f"nn.conv_transpose (the PE array runs 1-, 2- and 3-D)")
    groups = nn.prop_int(params, "groups", 1)
    n, c = x[0], x[1]
    cg, fg = c // groups, w[1]
    geo = conv_transpose_geometry(params, x, w)
    names = SPATIAL_NAMES[len(geo)]
    osp = (1,) * (len(geo) + 2 - len(out)) + tuple(out[2:])  # 1-D: a unit oh
    rows = []
    for (size, s, d, k, p), loop, length in zip(geo, names, osp):
        i = np.arange(length)
        start = -(-(i - p) // s)  # ceil((o − P) / s): the first real row the window meets
        stop = (i - p + d * (k - 1)) // s + 1
        rows.append(table_axis(loop, np.clip(start, 0, size), np.clip(stop, 0, size), size))
    insz = tuple(g[0] for g in geo)
    ksz = tuple(g[3] for g in geo)
    xa = accel.Access((n, groups, cg, *insz), (accel.on("n"), accel.on("g"), accel.on("c"),
                                               *rows))
    wa = accel.Access((groups, cg, fg, *ksz), (accel.on("g"), accel.on("c"), accel.on("f"),
                                               *(accel.FULL for _ in ksz)))
    accesses = [xa, wa]
    if len(shapes) > 2:
        accesses.append(accel.Access((groups, fg), (accel.on("g"), accel.on("f"))))
    y = accel.Access((n, groups, fg, *osp), tuple(accel.on(d) for d in
                                                  ("n", "g", "f", *names)))
    ext = {"n": n, "g": groups, "f": fg, **dict(zip(names, osp)), "c": cg}
    return accel.Space("nn.conv_transpose", "pe", tuple(ext), ext, tuple(accesses), y,
                       frozenset({"c"}), macs_per_point=math.prod(ksz))


def einsum_terms(equation: str, shapes: Sequence[Shape]) -> tuple[list[str], str]:
    """The equation's operand terms and output with `...` spelled out as fresh letters
    (one per broadcast axis, right-aligned) and the implicit output made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    used = {ch for ch in eq if ch.isalpha()}
    fresh = [ch for ch in "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba"
             if ch not in used]
    n_ell = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes)
                 if "..." in t), default=0)
    ell = "".join(fresh[:n_ell][::-1])
    out_terms = []
    for t, s in zip(terms, shapes):
        k = len(s) - len(t.replace("...", ""))
        out_terms.append(t.replace("...", ell[n_ell - k:] if k else ""))
    if not arrow:
        counts = Counter(ch for ch in lhs if ch.isalpha())
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(ch for ch, m in counts.items()
                                                               if m == 1))
    return out_terms, rhs.replace("...", ell)


def _groups(term: str, classes: Mapping[str, str]) -> list[str] | None:
    """The term's letters grouped by class, in order, if each class is contiguous."""
    seq: list[str] = []
    for ch in term:
        if not seq or seq[-1] != classes[ch]:
            if classes[ch] in seq:
                return None
            seq.append(classes[ch])
    return seq


def einsum_space(equation: str, shapes: Sequence[Shape], out: Shape) -> accel.Space:
    """PE array for a two-operand (batched) contraction (module docstring); else the
    vector unit with one loop per output axis and the summed axes whole."""
    terms, rhs = einsum_terms(equation, shapes)
    size = {ch: d for t, s in zip(terms, shapes) for ch, d in zip(t, s) if d != 1}
    size.update({ch: 1 for t in terms for ch in t if ch not in size})
    pe = _einsum_contraction(terms, rhs, shapes, size)
    if pe is not None:
        return pe
    ext = {f"d{i}": d for i, d in enumerate(out)}
    pos = {ch: i for i, ch in enumerate(rhs)}
    ops = []
    for t, s in zip(terms, shapes):
        ops.append(accel.Access(s, tuple(
            accel.FULL if ch not in pos else accel.ZERO if d == 1 and out[pos[ch]] != 1
            else accel.on(f"d{pos[ch]}") for ch, d in zip(t, s))))
    summed = math.prod(size[ch] for ch in size if ch not in pos)
    return accel.Space("nn.einsum", "vector", tuple(ext), ext, tuple(ops), _ident(out),
                       ops_per_point=summed * max(1, len(shapes) - 1))


def _einsum_contraction(terms: list[str], rhs: str, shapes: Sequence[Shape],
                        size: Mapping[str, int]) -> accel.Space | None:
    if len(terms) != 2:
        return None
    a, b = terms
    if any(len(set(t)) != len(t) for t in (a, b, rhs)) or any(
            d != size[ch] for t, s in zip(terms, shapes) for ch, d in zip(t, s)):
        return None  # a diagonal, or a broadcast axis: not a plain contraction
    sa, sb, so = set(a), set(b), set(rhs)
    if (sa - sb - so) or (sb - sa - so) or not (sa & sb - so):
        return None  # an axis summed inside one operand, or nothing contracted
    classes = {ch: ("b" if ch in sa and ch in sb and ch in so else "k" if ch not in so
                    else "m" if ch in sa else "n") for ch in sa | sb}
    grouped = [_groups(t, classes) for t in (a, b, rhs)]
    order = {}
    for t in (a, b, rhs):  # one letter order per class in every term
        for cls in "bmnk":
            letters = "".join(ch for ch in t if classes[ch] == cls)
            if letters and order.setdefault(cls, letters) != letters:
                return None
    if any(g is None for g in grouped):
        return None
    ext = {cls: math.prod(size[ch] for ch in order.get(cls, "")) for cls in "bmnk"}
    accesses = [accel.Access(tuple(ext[cls] for cls in g), tuple(accel.on(cls) for cls in g))
                for g in grouped]  # type: ignore[union-attr]
    return accel.Space("nn.einsum", "pe", tuple(ext), ext, (accesses[0], accesses[1]),
                       accesses[2], frozenset({"k"}), macs_per_point=1)


def einsum_groups(equation: str, shapes: Sequence[Shape]) -> str:
    """The contraction as a three-term einsum over its class groups (`bmk,bkn->bmn` in
    each operand's own group order) — what a PE tile computes on its view slices."""
    terms, rhs = einsum_terms(equation, shapes)
    sa, sb, so = set(terms[0]), set(terms[1]), set(rhs)
    classes = {ch: ("b" if ch in sa and ch in sb and ch in so else "k" if ch not in so
                    else "m" if ch in sa else "n") for ch in sa | sb}
    parts = ["".join(_groups(t, classes) or ()) for t in (*terms, rhs)]
    return f"{parts[0]},{parts[1]}->{parts[2]}"


# --------------------------------------------------------------------------------------
# Vector unit


def _pool(x: Shape, out: Shape, params: Mapping[str, Attribute]) -> accel.Space:
    kernel = nn.prop_ints(params, "kernel", ())
    nd = len(kernel)
    if nd not in SPATIAL_NAMES:
        raise VerifyException(f"accel.layer has no tiled form for a {nd}-D nn.pool")
    strides, pads, dil = window_params(params, nd)
    names = SPATIAL_NAMES[nd]
    ext = {"n": x[0], "c": x[1], **dict(zip(names, out[2:]))}
    xa = accel.Access(x, (accel.on("n"), accel.on("c"), *(
        accel.Axis("window", d, strides[i], dil[i], kernel[i], pads[i])
        for i, d in enumerate(names))))
    y = accel.Access(out, tuple(accel.on(d) for d in ext))
    taps = math.prod(kernel) * (2 if nn.prop_str(params, "mode", "max") == "lp" else 1)
    return accel.Space("nn.pool", "vector", tuple(ext), ext, (xa,), y, ops_per_point=taps)


def resize_source_rows(shape_in: Shape, params: Mapping[str, Attribute]
                       ) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per resized axis: (axis, source rows [out] or [out, taps], weights, extrapolated
    mask) — the reference kernel's plans, with nearest reduced to the row it picks."""
    from irflow.dialects.nn.resize_plan import resize_plans_of

    nearest = nn.prop_str(params, "mode", "nearest") == "nearest"
    plans = []
    for axis, idx, coeffs, extrapolated in resize_plans_of(shape_in, params):
        if nearest:
            idx = idx[np.arange(len(idx)), np.argmax(coeffs, axis=1)]
        plans.append((axis, idx, coeffs, extrapolated))
    return plans


def _resize(x: Shape, out: Shape, params: Mapping[str, Attribute]) -> accel.Space:
    ext = _loops(out)
    axes = [accel.on(f"d{i}") for i in range(len(out))]
    taps = 0
    for axis, idx, _, _ in resize_source_rows(x, params):
        rows = idx.reshape(len(idx), -1)
        axes[axis] = table_axis(f"d{axis}", rows.min(axis=1), rows.max(axis=1) + 1, x[axis])
        taps += rows.shape[1]
    return accel.Space("nn.resize", "vector", tuple(ext), ext, (accel.Access(x, tuple(axes)),),
                       _ident(out), ops_per_point=max(taps, 1))


# --------------------------------------------------------------------------------------
# DMA copies


def copy_sources(kind: str, x: Shape, out: Shape, params: Mapping[str, Attribute]
                 ) -> list[np.ndarray]:
    """Per axis of the (rank-aligned) output, the input index each output index copies,
    -1 where it copies none (constant padding): numpy's own tile / pad of `arange`."""
    x = (1,) * (len(out) - len(x)) + tuple(x)
    if kind == "nn.expand":
        return [np.arange(o) if s == o else np.zeros(o, np.int64) for s, o in zip(x, out)]
    if kind == "nn.tile":
        return [np.arange(o) % s for s, o in zip(x, out)]
    pads = nn.prop_ints(params, "pads", ())
    mode = nn.prop_str(params, "mode", "constant")
    r = len(x)
    src = []
    for i, s in enumerate(x):
        idx = np.arange(s)[max(-pads[i], 0): s + min(pads[i + r], 0)]
        width = (max(pads[i], 0), max(pads[i + r], 0))
        if mode == "constant":
            src.append(np.pad(idx, width, constant_values=-1))
        else:
            src.append(np.pad(idx, width, mode=mode))  # type: ignore[call-overload]
    return src


def _index_copy(kind: str, x: Shape, out: Shape, params: Mapping[str, Attribute]
                ) -> accel.Space:
    src = copy_sources(kind, x, out, params)
    view = (1,) * (len(out) - len(x)) + tuple(x)
    axes = tuple(source_axis(f"d{i}", s, n) for i, (s, n) in enumerate(zip(src, view)))
    ext = _loops(out)
    return accel.Space(kind, "dma", tuple(ext), ext, (accel.Access(view, axes),), _ident(out))


def rearrange_views(kind: str, x: Shape, params: Mapping[str, Attribute]
                    ) -> tuple[Shape, Shape, tuple[int, ...]]:
    """(input view, output view, perm): the op is `out_view = in_view.transpose(perm)`."""
    b = nn.prop_int(params, "blocksize", 1)
    crd = nn.prop_str(params, "mode", "DCR") == "CRD"
    n, c, h, w = x
    if kind == "nn.depth_to_space":
        c2 = c // (b * b)
        view = (n, c2, b, b, h, w) if crd else (n, b, b, c2, h, w)
        perm = (0, 1, 4, 2, 5, 3) if crd else (0, 3, 4, 1, 5, 2)
    else:
        view = (n, c, h // b, b, w // b, b)
        perm = (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4)
    return view, tuple(view[p] for p in perm), perm


def _rearrange(kind: str, x: Shape, out: Shape, params: Mapping[str, Attribute]
               ) -> accel.Space:
    view, out_view, perm = rearrange_views(kind, x, params)
    inv = {p: i for i, p in enumerate(perm)}
    ext = _loops(out_view)
    xa = accel.Access(view, tuple(accel.on(f"d{inv[j]}") for j in range(len(view))))
    return accel.Space(kind, "dma", tuple(ext), ext, (xa,), _ident(out_view))


def _elements(kind: str, shapes: Sequence[Shape], out: Shape,
              params: Mapping[str, Attribute]) -> accel.Space:
    """gather_elements: loops over the indices' other axes; scatter_elements: over the
    data's, the indices and updates read up to their own (possibly shorter) extent."""
    data, idx = shapes[0], shapes[1]
    axis = nn.prop_int(params, "axis", 0) % len(data)
    loop_shape = idx if kind == "nn.gather_elements" else data
    ext = _loops(loop_shape, [axis])

    def along(shape: Shape) -> accel.Access:
        axes = []
        for i, s in enumerate(shape):
            if i == axis:
                axes.append(accel.FULL)
            elif s == 1 and loop_shape[i] != 1 and kind == "nn.gather_elements":
                axes.append(accel.ZERO)  # take_along_axis broadcasts the data
            elif s == loop_shape[i]:
                axes.append(accel.on(f"d{i}"))
            else:  # a shorter axis: loop index j reads row j while j < s
                j = np.arange(loop_shape[i])
                axes.append(table_axis(f"d{i}", j, np.where(j < s, j + 1, -1), s))
        return accel.Access(shape, tuple(axes))

    ops = tuple(along(s) for s in shapes)
    return accel.Space(kind, "dma", tuple(ext), ext, ops, _ident(out, [axis]))


def _gather_nd(shapes: Sequence[Shape], out: Shape,
               params: Mapping[str, Attribute]) -> accel.Space:
    data, idx = shapes[0], shapes[1]
    bd = nn.prop_int(params, "batch_dims", 0)
    last = idx[-1]
    ext = _loops(out)
    rows = len(idx) - 1  # output axes [0, rows) follow the indices' rows
    da = accel.Access(data, tuple(
        accel.on(f"d{i}") if i < bd else accel.FULL if i < bd + last
        else accel.on(f"d{i - bd - last + rows}") for i in range(len(data))))
    ia = accel.Access(idx, tuple(accel.on(f"d{i}") if i < rows else accel.FULL
                                 for i in range(len(idx))))
    return accel.Space("nn.gather_nd", "dma", tuple(ext), ext, (da, ia), _ident(out))


def _scatter_nd(shapes: Sequence[Shape], out: Shape) -> accel.Space:
    data, idx, upd = shapes
    last = idx[-1]
    ext = {f"d{i}": data[i] for i in range(last, len(data))}
    da = _ident(data, range(last))
    ia = accel.Access(idx, tuple(accel.FULL for _ in idx))
    rows = len(idx) - 1
    ua = accel.Access(upd, tuple(accel.FULL if i < rows else accel.on(f"d{i - rows + last}")
                                 for i in range(len(upd))))
    return accel.Space("nn.scatter_nd", "dma", tuple(ext), ext, (da, ia, ua), da)
