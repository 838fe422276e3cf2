"""A decoder built quantized never holds its weights in float32 (issue 17, item 4).

The decoder family builds lazily (`WeightStore.add_lazy`); `convert-float` keeps a lazy
weight lazy (`WeightStore.transform`) and the pass manager's change detection holds
weights by weak reference without making lazy ones, so `quantize-groups` makes, quantizes
and drops one float tensor at a time. Checked on decoder-15m: the store's dtypes after
the pipeline, and the numpy allocation peak during it (tracemalloc) against the float32
model's size.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from irflow import zoo
from irflow.pipeline import run_pipeline
from irflow.weights import weights_of


def test_w4a16_build_never_materializes_float32_weights() -> None:
    module = zoo.load("decoder-15m", entry="decode", cache=8)
    store = weights_of(module)
    names = list(store)
    assert all(store.is_lazy(k) for k in names)  # building allocated nothing
    fp32_bytes = 4 * zoo.decoder.PRESETS["decoder-15m"].param_count()
    tracemalloc.start()
    try:
        run_pipeline(module, "convert-float,quantize-groups{bits=4 group=32}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    made = {k: store[k] for k in store if not store.is_lazy(k)}
    assert made, "quantize-groups made the linear weights"
    assert {a.dtype for a in made.values()} <= {np.dtype(np.int8), np.dtype(np.float16)}
    assert not any(store.is_lazy(k) and k.endswith("proj.weight") for k in store)
    # one float32 tensor at a time: the peak stays below the float32 model's bytes (it
    # was 1.53x them when convert-float made every float32 weight and the pass manager
    # held them all; now 0.79x: the float16 tied embedding the gather keeps, the int4
    # weights and, transiently, the embedding's float32 init)
    assert peak < 0.85 * fp32_bytes, (peak, fp32_bytes)
    # what is left lazy is float16 on first read (convert-float composed with the init)
    rest = [k for k in store if store.is_lazy(k)]
    assert rest and all(store[k].dtype == np.float16 for k in rest)


def test_transform_keeps_a_lazy_entry_lazy() -> None:
    from irflow.weights import WeightStore

    calls: list[int] = []
    store = WeightStore()
    key = store.add_lazy("w", lambda: calls.append(1) or np.ones(3, np.float32))
    store.transform(key, lambda a: a.astype(np.float16))
    assert store.is_lazy(key) and not calls
    assert store[key].dtype == np.float16 and calls == [1]
    store.transform(key, lambda a: a * 2)  # a made entry is transformed at once
    assert store[key].tolist() == [2.0, 2.0, 2.0]
