"""`prune`: magnitude, channel and N:M modes, the `nn.sparsity` attribute, and the semantic
twin of each mode — the pruned model equals the dense model with the pruned weights (or the
removed filters) set to zero, on seeded inputs, through the reference executor."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, StringAttr

from irflow.backends.reference import run
from irflow.diagnostics import PassError
from irflow.dialects import nn
from irflow.graph import GraphBuilder, input_names, main_func
from irflow.io import parse_mlir, print_module, verify_module
from irflow.passes.prune import (
    PruneWarning,
    prune_channels,
    prune_magnitude,
    prune_nm,
)
from irflow.pipeline import parse_pipeline, run_pipeline
from irflow.sparsity import attr_holds, is_nm_sparse, nm_mask, smallest_mask, sparsity_of
from irflow.weights import WeightStore, attach_weights, weights_of

# Pruned vs masked-dense: same arithmetic on the kept channels, only the folded constants
# are summed in another order, so the bound is float32 rounding relative to the output.
RTOL = 2e-5


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


class Net:
    """A tiny model builder over GraphBuilder with seeded weights."""

    def __init__(self, shape: list[int], seed: int = 0):
        self.g = GraphBuilder()
        self.rng = _rng(seed)
        self.x = self.g.input("x", shape)

    def w(self, name: str, *shape: int, positive: bool = False) -> object:
        a = (self.rng.standard_normal(shape) * 0.5).astype(np.float32)
        return self.g.weight(name, np.abs(a) + 0.5 if positive else a)

    def conv(self, x, cin: int, cout: int, name: str, k: int = 3, pad: int = 1,
             groups: int = 1, act: str | None = None, bias: bool = True):
        w = self.w(f"{name}.weight", cout, cin // groups, k, k)
        b = self.w(f"{name}.bias", cout) if bias else None
        return self.g.add(nn.Conv2dOp(x, w, b, pads=(pad,) * 4, groups=groups,
                                      act=act)).results[0]

    def bn(self, x, c: int, name: str):
        ps = [self.w(f"{name}.scale", c), self.w(f"{name}.bias", c),
              self.w(f"{name}.mean", c), self.w(f"{name}.var", c, positive=True)]
        return self.g.add(nn.BatchNormOp.make([x, *ps])).results[0]

    def op(self, cls, *operands, **props):
        return self.g.add(cls.make(list(operands), props)).results[0]

    def relu(self, x):
        return self.g.add(nn.ReluOp(x)).results[0]

    def linear(self, x, cin: int, cout: int, name: str, act: str | None = None):
        props = {"act": StringAttr(act)} if act else {}
        return self.op(nn.LinearOp, x, self.w(f"{name}.weight", cout, cin),
                       self.w(f"{name}.bias", cout), **props)

    def finish(self, *outs) -> ModuleOp:
        m = self.g.finish(list(outs), [f"out{i}" for i in range(len(outs))])
        verify_module(m)
        return m


def residual_concat_net(seed: int = 0) -> ModuleOp:
    """conv-bn-relu, a residual block with a depthwise conv, a concat of two convs,
    maxpool, flatten -> linear."""
    n = Net([2, 3, 8, 8], seed)
    y = n.relu(n.bn(n.conv(n.x, 3, 16, "c1"), 16, "bn1"))
    z = n.relu(n.bn(n.conv(y, 16, 16, "c2", bias=False), 16, "bn2"))
    z = n.conv(z, 16, 16, "dw", groups=16)
    z = n.conv(z, 16, 16, "c3", k=1, pad=0)
    s = n.relu(n.op(nn.AddOp, y, z))
    a = n.conv(s, 16, 8, "c4")
    b = n.conv(s, 16, 8, "c5", act="relu")
    cat = n.op(nn.ConcatOp, a, b, axis=nn.i64_attr(1))
    cat = n.relu(n.bn(cat, 16, "bn3"))
    p = n.op(nn.MaxPoolOp, cat, kernel=nn.int_array([2, 2]), strides=nn.int_array([2, 2]))
    f = n.op(nn.FlattenOp, p)
    return n.finish(n.linear(f, 16 * 16, 10, "fc"))


def mlp(seed: int = 0) -> ModuleOp:
    n = Net([4, 64], seed)
    h = n.linear(n.x, 64, 32, "fc1", act="relu")
    h = n.relu(n.linear(h, 32, 16, "fc2"))
    return n.finish(n.linear(h, 16, 10, "fc3"))


def _inputs(m: ModuleOp, seed: int = 1) -> dict[str, np.ndarray]:
    fn = main_func(m)
    rng = _rng(seed)
    return {name: rng.standard_normal([int(d) for d in a.type.get_shape()]).astype(np.float32)
            for name, a in zip(input_names(fn), fn.body.blocks[0].args)}


def _copy_store(m: ModuleOp) -> WeightStore:
    return WeightStore({k: v.copy() for k, v in weights_of(m).items()})


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for k in got:
        scale = max(float(np.abs(want[k]).max()), 1e-6)
        err = float(np.abs(got[k] - want[k]).max())
        assert err <= RTOL * scale, f"{k}: max error {err} vs output scale {scale}"


def _masked_twin(build: Callable[[], ModuleOp], original: WeightStore,
                 removed: dict[str, list[int]]) -> ModuleOp:
    """The dense model with the removed filters (output rows) set to zero."""
    store = WeightStore({k: v.copy() for k, v in original.items()})
    for key, rows in removed.items():
        store[key][rows] = 0
    return attach_weights(build(), store)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, PruneWarning)]


# --------------------------------------------------------------------------------------
# masks


def test_smallest_mask_drops_exactly_k_smallest():
    a = _rng().standard_normal(1000)
    keep = smallest_mask(np.abs(a), 300)
    assert (~keep).sum() == 300
    assert np.abs(a[~keep]).max() <= np.abs(a[keep]).min()


def test_nm_mask_keeps_largest_n_of_every_m_along_axis():
    w = _rng().standard_normal((6, 8, 3, 3)).astype(np.float32)
    keep = nm_mask(w, 2, 4, axis=1)
    assert keep.sum() == w.size // 2
    assert is_nm_sparse(w * keep, 2, 4, axis=1)
    assert not is_nm_sparse(w, 2, 4, axis=1)
    groups = np.abs(np.moveaxis(w, 1, -1).reshape(6, 3, 3, 2, 4))
    kept = np.moveaxis(keep, 1, -1).reshape(6, 3, 3, 2, 4)
    # every kept magnitude is >= every dropped one within its group of 4
    lo = np.where(kept, groups, np.inf).min(-1)
    hi = np.where(kept, -np.inf, groups).max(-1)
    assert (lo >= hi).all()


# --------------------------------------------------------------------------------------
# magnitude


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_magnitude_global_hits_target_and_threshold(sparsity):
    m = residual_concat_net()
    before = _copy_store(m)
    x = _inputs(m)
    report = prune_magnitude(m, sparsity, "global")
    verify_module(m)
    assert report.zeros == round(sparsity * report.params_before)
    store = weights_of(m)
    kept, dropped = [], []
    for key, keep in report.masks.items():
        assert np.array_equal(store[key], np.where(keep, before[key], 0))
        kept.append(np.abs(before[key][keep]))
        dropped.append(np.abs(before[key][~keep]))
    assert np.concatenate(dropped).max() <= np.concatenate(kept).min()  # one global threshold
    # each pruned constant states its density
    for op in main_func(m).walk():
        if isinstance(op, nn.ConstantOp) and op.value.key in report.masks:
            attr = sparsity_of(op)
            assert attr is not None and not attr.is_nm
            key = op.value.key
            assert attr.density.value.data == pytest.approx(
                np.count_nonzero(store[key]) / store[key].size)
    # semantic twin: the dense model with those weights zeroed
    masked = WeightStore({k: v.copy() for k, v in before.items()})
    for key, keep in report.masks.items():
        masked[key] = np.where(keep, before[key], 0).astype(np.float32)
    _assert_close(run(m, x), run(attach_weights(residual_concat_net(), masked), x))


def test_magnitude_per_layer_scope_prunes_each_weight_to_target():
    m = mlp()
    report = prune_magnitude(m, 0.6, "layer")
    for key, keep in report.masks.items():
        assert (~keep).sum() == round(0.6 * keep.size), key
    assert set(report.masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}


def test_magnitude_exclude_by_name_and_warns_on_unmatched_pattern():
    m = mlp()
    before = _copy_store(m)
    report, messages = _quiet(prune_magnitude, m, 0.5, "global", ("fc3*", "nosuch*"))
    assert "fc3.weight" not in report.masks
    assert np.array_equal(weights_of(m)["fc3.weight"], before["fc3.weight"])
    assert report.unmatched == ["nosuch*"]
    assert any("'nosuch*' matches no layer" in msg for msg in messages)


# --------------------------------------------------------------------------------------
# N:M


def test_nm_prunes_along_reduction_axis_and_skips_indivisible_layers():
    m = residual_concat_net()
    before = _copy_store(m)
    x = _inputs(m)
    report, messages = _quiet(prune_nm, m, 2, 4)
    store = weights_of(m)
    # c1 reads 3 input channels and dw one per group: not multiples of 4
    assert "c1.weight" not in report.masks and "dw.weight" not in report.masks
    assert any("c1.weight" in msg and "not a multiple of 4" in msg for msg in messages)
    assert {"c2.weight", "c3.weight", "c4.weight", "c5.weight", "fc.weight"} <= set(report.masks)
    consts = {op.value.key: op for op in main_func(m).walk()
              if isinstance(op, nn.ConstantOp) and sparsity_of(op) is not None}
    assert set(consts) == set(report.masks)
    for key in report.masks:
        assert attr_holds(store[key], sparsity_of(consts[key])), key
        assert np.count_nonzero(store[key]) <= store[key].size // 2
    # convs: runs of 4 input channels at each tap; fc reads a flatten of 16 channels of
    # 4x4: runs of 4 channels at one position, 16 columns apart
    assert sparsity_of(consts["c2.weight"]).stride.value.data == 1
    assert is_nm_sparse(store["c2.weight"], 2, 4, axis=1)
    assert is_nm_sparse(store["fc.weight"].reshape(10, 16, 16), 2, 4, axis=1)
    text = print_module(m)
    assert '{nn.sparsity = #nn.sparsity<"2:4", axis = 1>}' in text
    assert '{nn.sparsity = #nn.sparsity<"2:4", axis = 1, stride = 16>}' in text
    masked = WeightStore({k: v.copy() for k, v in before.items()})
    for key, keep in report.masks.items():
        masked[key] = np.where(keep, before[key], 0).astype(np.float32)
    _assert_close(run(m, x), run(attach_weights(residual_concat_net(), masked), x))


def test_nm_mask_with_stride_groups_elements_stride_apart():
    w = _rng(4).standard_normal((3, 2 * 4 * 5)).astype(np.float32)
    keep = nm_mask(w, 1, 4, axis=1, stride=5)
    for row in range(3):
        for g in range(2):
            for r in range(5):
                idx = [(g * 4 + j) * 5 + r for j in range(4)]
                assert keep[row, idx].sum() == 1
                assert keep[row, idx][np.argmax(np.abs(w[row, idx]))]
    assert is_nm_sparse(w * keep, 1, 4, axis=1, stride=5)
    assert not is_nm_sparse(w * keep, 1, 4, axis=1)


def test_nm_on_matmul_constant_rhs_uses_its_rows():
    n = Net([3, 8])
    rhs = n.w("proj", 8, 5)
    m = n.finish(n.op(nn.MatmulOp, n.x, rhs))
    report = prune_nm(m, 1, 4)
    assert is_nm_sparse(weights_of(m)["proj"], 1, 4, axis=0)
    assert report.masks["proj"].sum() == 2 * 5
    assert '#nn.sparsity<"1:4", axis = 0>' in print_module(m)


def test_sparsity_attribute_round_trips_through_text():
    m = mlp()
    prune_nm(m, 2, 4)
    prune_magnitude(m, 0.5, exclude=("fc1*", "fc2*"))
    text = print_module(m)
    assert "#nn.sparsity<unstructured, density = 0.5>" in text
    again = parse_mlir(text, "pruned.mlir")
    verify_module(again)
    assert print_module(again) == text


# --------------------------------------------------------------------------------------
# channel


def _prune_and_compare(build: Callable[[], ModuleOp], ratio: float, **kw):
    m = build()
    before = _copy_store(m)
    x = _inputs(m)
    report, messages = _quiet(prune_channels, m, ratio, **kw)
    verify_module(m)
    masked = _masked_twin(build, before, report.removed)
    _assert_close(run(m, x), run(masked, x))
    return m, report, messages


def _shape(m: ModuleOp, key: str) -> tuple[int, ...]:
    return tuple(weights_of(m)[key].shape)


def test_channel_residual_concat_depthwise_flatten_groups():
    m, report, _ = _prune_and_compare(residual_concat_net, 0.25)
    # c1 and c3 feed the residual add: one channel set for both
    assert report.removed["c1.weight"] == report.removed["c3.weight"]
    assert len(report.removed["c1.weight"]) == 4
    assert _shape(m, "c1.weight") == (12, 3, 3, 3)
    assert _shape(m, "bn1.scale") == (12,)
    assert _shape(m, "dw.weight")[0] == 12          # depthwise passes the group through
    assert _shape(m, "c3.weight") == (12, 12, 1, 1)  # both its filters and its inputs
    assert _shape(m, "c2.weight") == (12, 12, 3, 3)  # an inner group of its own
    # concat: c4 and c5 each lose 2 of 8; bn3 after the concat and fc's column blocks shrink
    assert _shape(m, "c4.weight")[0] == 6 and _shape(m, "c5.weight")[0] == 6
    assert _shape(m, "bn3.scale") == (12,)
    assert _shape(m, "fc.weight") == (10, 12 * 16)
    groups = [op for op in main_func(m).walk()
              if isinstance(op, nn.Conv2dOp) and op.groups.value.data > 1]
    assert groups[0].groups.value.data == 12


def test_channel_bias_fold_is_exact_without_padding():
    """With 1x1 consumers and a linear head, removed channels fold into biases only."""
    def build() -> ModuleOp:
        n = Net([2, 4, 5, 5], seed=3)
        y = n.relu(n.bn(n.conv(n.x, 4, 8, "a", k=1, pad=0), 8, "bna"))
        y = n.conv(y, 8, 8, "b", k=1, pad=0, act="relu")
        g = n.op(nn.GlobalAvgPoolOp, y)
        return n.finish(n.linear(n.op(nn.FlattenOp, g), 8, 3, "fc"))

    m, report, _ = _prune_and_compare(build, 0.5)
    assert set(report.removed) == {"a.weight", "b.weight"}
    assert not any(isinstance(op, nn.AddOp) for op in main_func(m).walk())
    assert _shape(m, "fc.weight") == (3, 4)


def test_channel_padding_gets_an_exact_constant_map_unless_fold_bias():
    m, _, _ = _prune_and_compare(residual_concat_net, 0.5)
    adds = [op for op in main_func(m).walk() if isinstance(op, nn.AddOp)]
    assert len(adds) > 1  # the residual add plus border corrections
    approx = residual_concat_net()
    n_before = sum(a.size for a in weights_of(approx).values())
    _quiet(prune_channels, approx, 0.5, fold="bias")
    assert len([op for op in main_func(approx).walk() if isinstance(op, nn.AddOp)]) == 1
    assert sum(a.size for a in weights_of(approx).values()) < 0.5 * n_before


def test_channel_mlp_prunes_hidden_neurons_and_keeps_the_output_layer():
    m, report, messages = _prune_and_compare(mlp, 0.5)
    assert _shape(m, "fc1.weight") == (16, 64)
    assert _shape(m, "fc2.weight") == (8, 16)
    assert _shape(m, "fc3.weight") == (10, 8)
    assert "fc3.weight" not in report.removed
    assert any("it is a graph output" in msg for msg in messages)


def test_channel_group_tied_to_unprunable_op_is_skipped_with_reason():
    def build() -> ModuleOp:
        n = Net([1, 2, 4, 4], seed=5)
        a = n.conv(n.x, 2, 8, "a")
        r = n.g.add(nn.ReshapeOp(a, [1, 4, 2, 16])).results[0]   # mixes channels
        b = n.conv(n.x, 2, 8, "b", act="relu")
        c = n.conv(b, 8, 4, "c")
        return n.finish(r, c)

    m, report, messages = _prune_and_compare(build, 0.5)
    assert "a.weight" not in report.removed and "b.weight" in report.removed
    assert any("nn.reshape" in msg and "mixes channels" in msg for msg in messages)
    assert _shape(m, "a.weight") == (8, 2, 3, 3)


def test_channel_residual_tied_to_graph_input_is_skipped():
    def build() -> ModuleOp:
        n = Net([1, 4, 6, 6], seed=6)
        y = n.conv(n.x, 4, 4, "a")
        s = n.op(nn.AddOp, y, n.x)
        return n.finish(n.conv(s, 4, 2, "b"))

    _, report, messages = _prune_and_compare(build, 0.5)
    assert report.removed == {}
    assert any("graph input" in msg for msg in messages)


def test_channel_exclude_pattern_keeps_the_group():
    _, report, messages = _prune_and_compare(residual_concat_net, 0.25, exclude=("c3.*",))
    assert "c1.weight" not in report.removed and "c3.weight" not in report.removed
    assert "c2.weight" in report.removed
    assert any("excluded by pattern 'c3.*'" in msg for msg in messages)



def test_channel_exclude_of_one_concat_input_still_prunes_the_other():
    _, report, messages = _prune_and_compare(residual_concat_net, 0.25, exclude=("c4.*",))
    assert "c4.weight" not in report.removed
    assert len(report.removed["c5.weight"]) == 2  # its 8 filters, 25 %: bn3/fc shrink with it
    assert any("excluded by pattern 'c4.*'" in msg for msg in messages)

# --------------------------------------------------------------------------------------
# the pass and its options


@pytest.mark.parametrize("spec, message", [
    ("prune{sparsity=1.0}", "sparsity in [0, 1)"),
    ("prune{sparsity=1}", "sparsity in [0, 1)"),
    ("prune{sparsity=-0.1}", "sparsity in [0, 1)"),
    ("prune{mode=nm n=4 m=4}", "1 <= N < M"),
    ("prune{mode=nm n=5 m=4}", "1 <= N < M"),
    ("prune{mode=channel ratio=1.0}", "ratio in [0, 1)"),
    ("prune{mode=lottery}", "mode in"),
    ("prune{norm=l3}", "norm in"),
    ("prune{scope=everywhere}", "scope in"),
])
def test_bad_options_fail_when_pipeline_is_parsed(spec, message):
    with pytest.raises(PassError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_pipeline(spec)


def test_pass_through_pipeline_with_exclude_list():
    m = mlp()
    before = _copy_store(m)
    run_pipeline(m, 'prune{mode=magnitude sparsity=0.5 scope=layer exclude="fc1*,fc3*"}')
    store = weights_of(m)
    assert np.array_equal(store["fc1.weight"], before["fc1.weight"])
    assert np.count_nonzero(store["fc2.weight"]) == store["fc2.weight"].size // 2


def test_fold_batchnorm_keeps_the_sparsity_attribute():
    def build() -> ModuleOp:
        n = Net([1, 8, 4, 4], seed=7)
        return n.finish(n.bn(n.conv(n.x, 8, 8, "a"), 8, "bn"))

    m = build()
    prune_nm(m, 2, 4)
    run_pipeline(m, "fold-batchnorm")
    consts = [op for op in main_func(m).walk()
              if isinstance(op, nn.ConstantOp) and sparsity_of(op) is not None]
    assert len(consts) == 1
    assert is_nm_sparse(weights_of(m)[consts[0].value.key], 2, 4, axis=1)


# --------------------------------------------------------------------------------------
# zoo


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_zoo_models_prune_verify_and_run(name, ratio):
    from irflow import zoo

    m, report, messages = _prune_and_compare(lambda: zoo.load(name), ratio)
    assert len(report.removed) >= 15
    n_conv = sum(isinstance(op, nn.Conv2dOp) for op in main_func(m).walk())
    assert n_conv == sum(isinstance(op, nn.Conv2dOp) for op in main_func(zoo.load(name)).walk())
    assert messages  # the classifier is tied to the graph output: an explained skip


def test_int8_sparse_pipeline_keeps_the_2_4_attribute_through_quantize():
    from irflow.passes.calibrate import set_calibration_data

    m = mlp()
    x = _inputs(m)
    dense = run(m, x)["out0"]
    set_calibration_data(m, [_inputs(m, seed) for seed in range(4)])
    run_pipeline(m, "int8-sparse")
    verify_module(m)
    consts = [op for op in main_func(m).walk()
              if isinstance(op, nn.ConstantOp) and sparsity_of(op) is not None]
    assert len(consts) == 3  # fc1, fc2, fc3 (64, 32, 16 columns: multiples of 4)
    for c in consts:
        assert sparsity_of(c).n_m == (2, 4)
        assert is_nm_sparse(weights_of(m)[c.value.key], 2, 4, axis=1)
    out = run(m, x)["out0"]
    assert out.shape == dense.shape and np.isfinite(out).all()


def test_quantized_model_is_left_alone_with_a_reason():
    from irflow.passes.calibrate import set_calibration_data

    m = mlp()
    set_calibration_data(m, [_inputs(m, seed) for seed in range(2)])
    run_pipeline(m, "calibrate,quantize{bits=8}")
    text = print_module(m)
    report, messages = _quiet(prune_channels, m, 0.5)
    assert report.removed == {} and print_module(m) == text
    assert any("prune before quantize" in msg for msg in messages)
    report = prune_magnitude(m, 0.5)
    assert report.masks == {} and print_module(m) == text


def test_storage_bits_of_sparse_formats():
    from irflow.sparsity import storage_bits

    shape = (64, 128)  # 8192 weights
    assert storage_bits(shape, 8, None) == 8192 * 8
    # 2:4: per 4 weights, 2 int8 values + 2 two-bit indices = 20 bits (vs 32 dense)
    assert storage_bits(shape, 8, nn.SparsityAttr.nm(2, 4, 1)) == 2048 * 20
    assert storage_bits(shape, 4, nn.SparsityAttr.nm(2, 4, 1)) == 2048 * 12
    # unstructured at density 0.25: bitmap + 2048 values
    assert storage_bits(shape, 8, nn.SparsityAttr.unstructured(0.25)) == 8192 + 2048 * 8


def random_net(seed: int) -> ModuleOp:
    """A random CNN of the shapes channel pruning must handle: conv/bn/act chains,
    depthwise convs, residual adds, concats, squeeze-excite, pooling, flatten -> linear."""
    rng = _rng(seed)
    n = Net([1, 3, 6, 6], seed)
    x, c, k = n.x, 3, 0

    def name() -> str:
        nonlocal k
        k += 1
        return f"l{k}"

    def conv(x, c_in, c_out, **kw):
        return n.conv(x, c_in, c_out, name(), **kw)

    x, c = conv(x, c, 8), 8
    for _ in range(int(rng.integers(3, 6))):
        kind = rng.choice(["conv", "bn", "dw", "res", "cat", "se", "pool1"])
        if kind == "conv":
            c_out, ks = int(rng.choice([4, 8, 12])), int(rng.choice([1, 3]))
            pad = int(rng.integers(0, 2)) if ks == 3 and nn.shape_of(x)[2] > 3 else ks // 2
            x, c = conv(x, c, c_out, k=ks, pad=pad, act="relu"), c_out
        elif kind == "bn":
            x = n.relu(n.bn(x, c, name()))
        elif kind == "dw":
            x = conv(x, c, c, groups=c, act="relu6")
        elif kind == "res":
            y = conv(n.relu(conv(x, c, c)), c, c)
            x = n.relu(n.op(nn.AddOp, x, y))
        elif kind == "cat":
            a, b = conv(x, c, 4), conv(x, c, 6, act="relu")
            x, c = n.op(nn.ConcatOp, a, b, axis=nn.i64_attr(1)), 10
        elif kind == "se":  # squeeze-excite: x * sigmoid(expand(relu(reduce(gap(x)))))
            g = n.op(nn.GlobalAvgPoolOp, x)
            s = conv(conv(g, c, 4, k=1, pad=0, act="relu"), 4, c, k=1, pad=0)
            x = n.op(nn.MulOp, x, n.g.add(nn.SigmoidOp(s)).results[0])
        else:
            x = conv(x, c, c, k=1, pad=0)
    if rng.random() < 0.5:
        x = n.op(nn.GlobalAvgPoolOp, x)
    f = n.op(nn.FlattenOp, x)
    return n.finish(n.linear(f, nn.shape_of(f)[1], 5, "head"))


@pytest.mark.parametrize("seed", range(16))
def test_channel_random_graphs_equal_their_masked_twin(seed):
    _, report, _ = _prune_and_compare(lambda: random_net(seed), 0.5)
    assert report.removed


def test_channel_shared_constants_are_not_sliced_under_other_users():
    """cse can leave one batchnorm parameter constant feeding two groups (or a group and
    a kept layer): each user gets its own slice, the others keep the full constant."""
    def build() -> ModuleOp:
        n = Net([1, 3, 5, 5], seed=9)
        ones, zeros = n.g.weight("ones", np.ones(8, np.float32)), n.g.weight(
            "zeros", np.zeros(8, np.float32))
        shift = n.w("shift", 8)
        a = n.relu(n.g.add(nn.BatchNormOp.make(
            [n.conv(n.x, 3, 8, "a", k=1, pad=0), ones, shift, zeros, ones])).results[0])
        b = n.g.add(nn.BatchNormOp.make(
            [n.conv(a, 8, 8, "b", k=1, pad=0), ones, shift, zeros, ones])).results[0]
        return n.finish(b, n.conv(a, 8, 2, "c", k=1, pad=0))   # b's group is an output

    m, report, _ = _prune_and_compare(build, 0.5)
    assert set(report.removed) == {"a.weight"}
    assert _shape(m, "ones") == (8,) and _shape(m, "shift") == (8,)   # b still reads them
    sliced = [op for op in main_func(m).walk() if isinstance(op, nn.ConstantOp)
              and nn.shape_of(op.output) == (4,) and op.value.key != "a.bias"]
    assert len(sliced) == 4   # a's batchnorm: its own scale, shift, mean and var slices


def test_smallest_mask_breaks_ties_by_position():
    a = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 5.0])
    assert smallest_mask(a, 2).tolist() == [True, False, True, False, True, True]
    assert smallest_mask(a, 0).all() and not smallest_mask(a, 6).any()
