"""Optimizers, schedules and the training loop: torch.optim's update rules written out,
determinism, checkpoints, pruning masks, distillation, and the errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from irflow.diagnostics import IrflowError
from irflow.frontends.dsl import compile_source
from irflow.pipeline import run_pipeline
from irflow.train.data import Split, load_split
from irflow.train.loop import TrainConfig, Trainer, TrainingError, accuracy
from irflow.train.optim import OptimizerConfig, ScheduleConfig, clip_grad_norm, make_optimizer
from irflow.weights import weights_of

MLP = """
model blobs(x: f32[1, 2, 4, 4]) {
  conv = conv2d(x, out=4, kernel=3, pad=1)
  mix = conv2d(relu(conv), out=4, kernel=1)
  pool = maxpool(relu(mix), kernel=2)
  fc = linear(flatten(pool), out=3)
  return fc
}
"""


def blobs(n: int = 96, seed: int = 0) -> Split:
    """Three separable classes of 2x4x4 images (class c: mean c on channel c % 2)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 2, 4, 4)).astype(np.float32) * 0.5
    x[np.arange(n), y % 2] += (y[:, None, None] + 1).astype(np.float32)
    return Split(x[: n * 3 // 4], y[: n * 3 // 4], x[n * 3 // 4:], y[n * 3 // 4:])


def model(seed: int = 0):  # noqa: ANN201
    return compile_source(MLP, "blobs.irf", seed=seed)


# -- optimizers -----------------------------------------------------------------------------


def run_opt(config: OptimizerConfig, grads: list[float], p0: float = 1.0) -> float:
    params = {"p": np.array([p0], np.float64)}
    opt = make_optimizer(config, params)
    for g in grads:
        opt.step({"p": np.array([g])})
    return float(params["p"][0])


def test_sgd_momentum_and_nesterov_follow_torch() -> None:
    lr, mu, wd = 0.1, 0.9, 0.01
    # torch: g' = g + wd p; b1 = g'; b2 = mu b1 + g'; p -= lr * b (or lr * (g' + mu b))
    p, b = 1.0, None
    for g in (0.5, -0.2):
        g = g + wd * p
        b = g if b is None else mu * b + g
        p -= lr * b
    assert run_opt(OptimizerConfig("sgd", lr, momentum=mu, weight_decay=wd), [0.5, -0.2]) == \
        pytest.approx(p)
    p, b = 1.0, None
    for g in (0.5, -0.2):
        b = g if b is None else mu * b + g
        p -= lr * (g + mu * b)
    assert run_opt(OptimizerConfig("sgd", lr, momentum=mu, nesterov=True), [0.5, -0.2]) == \
        pytest.approx(p)


def test_adam_and_adamw_follow_torch() -> None:
    lr, (b1, b2), eps, wd = 0.01, (0.9, 0.999), 1e-8, 0.1
    grads = [0.3, -0.1, 0.2]

    def adam(decoupled: bool) -> float:
        p, m, v = 1.0, 0.0, 0.0
        for t, g in enumerate(grads, 1):
            if decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr / (1 - b1 ** t) * m / (math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
        return p

    assert run_opt(OptimizerConfig("adam", lr, weight_decay=wd), grads) == pytest.approx(
        adam(False), rel=1e-12)
    assert run_opt(OptimizerConfig("adamw", lr, weight_decay=wd), grads) == pytest.approx(
        adam(True), rel=1e-12)
    assert adam(False) != pytest.approx(adam(True), rel=1e-6)


def test_schedules_and_clipping() -> None:
    step = ScheduleConfig("step", step_size=3, gamma=0.5)
    assert [step.lr(1.0, t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    cos = ScheduleConfig("cosine", total=10)
    assert cos.lr(2.0, 0) == 2.0 and cos.lr(2.0, 5) == pytest.approx(1.0)
    assert cos.lr(2.0, 10) == pytest.approx(0.0)
    warm = ScheduleConfig("cosine", total=12, warmup=2)
    assert [warm.lr(1.0, t) for t in (0, 1, 2)] == [0.5, 1.0, 1.0]
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt((grads["a"] ** 2).sum() + (grads["b"] ** 2).sum()) == pytest.approx(1.0,
                                                                                     rel=1e-5)
    with pytest.raises(IrflowError, match="Nesterov"):
        OptimizerConfig("sgd", 0.1, nesterov=True)


# -- the loop -------------------------------------------------------------------------------


def config(**kw) -> TrainConfig:  # noqa: ANN003
    base = dict(epochs=4, batch=8, optimizer=OptimizerConfig("adam", lr=0.02))
    return TrainConfig(**(base | kw))


def test_training_learns_and_is_deterministic() -> None:
    data = blobs()
    m = model()
    before = accuracy(m, data.x_test, data.y_test)
    a, b = Trainer(model(), config()), Trainer(model(), config())
    ha, hb = a.fit(data), b.fit(data)
    assert ha[-1].test_acc >= 0.9 > before
    assert ha[-1].loss < ha[0].loss
    assert [h.loss for h in ha] == [h.loss for h in hb]
    for n in a.params:
        np.testing.assert_array_equal(a.params[n], b.params[n])
    # the trained module runs with the new weights, the original keeps its own
    assert accuracy(a.trained(), data.x_test, data.y_test) == ha[-1].test_acc
    assert accuracy(m, data.x_test, data.y_test) == before


def test_resume_from_checkpoint_reproduces_the_run(tmp_path) -> None:  # noqa: ANN001
    data = blobs()
    full = Trainer(model(), config(epochs=4))
    full.fit(data)
    first = Trainer(model(), config(epochs=2))
    first.fit(data, checkpoint=tmp_path / "ck.npz")
    resumed = Trainer(model(), config(epochs=4))
    resumed.resume(tmp_path / "ck.npz")
    assert resumed.epoch == 2
    resumed.fit(data)
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]
    for n in full.params:
        np.testing.assert_array_equal(full.params[n], resumed.params[n])


def test_pruned_weights_stay_zero_and_two_four_stays_two_four() -> None:
    m = model()
    run_pipeline(m, "prune{mode=nm n=2 m=4}")
    trainer = Trainer(m, config(optimizer=OptimizerConfig("adamw", lr=0.02, weight_decay=0.1)))
    zeros = {n: trainer.params[n] == 0 for n in trainer.masks}
    assert zeros, "prune marked no weight"
    trainer.fit(blobs())
    assert set(zeros) == {"mix.weight", "fc.weight"}  # conv's 2 input channels: left dense
    for n, z in zeros.items():  # the same zeros: the 2:4 pattern prune chose is kept
        w = trainer.params[n]
        assert (w[z] == 0).all() and (w[~z] != 0).all()
        assert z.mean() == 0.5
        assert not np.array_equal(w, weights_of(m)[n])  # trained
    mix = trainer.params["mix.weight"].reshape(4, 4)  # 2 of every 4 input channels
    assert ((mix != 0).sum(axis=1) == 2).all()


def test_distillation_uses_the_teacher() -> None:
    data = blobs()
    teacher = Trainer(model(seed=1), config()).trained()
    trainer = Trainer(model(), config(epochs=1, distill_alpha=1.0, temperature=2.0),
                      teacher=teacher)
    assert "teacher_logits" in trainer.signature.targets
    trainer.fit(data)
    assert trainer.history[0].loss > 0


def test_nan_loss_names_epoch_and_batch_and_keeps_the_last_checkpoint(tmp_path) -> None:  # noqa: ANN001
    data = blobs()
    trainer = Trainer(model(), config(epochs=1))
    trainer.fit(data, checkpoint=tmp_path / "ck.npz")
    saved = (tmp_path / "ck.npz").read_bytes()
    bad = Split(data.x_train.copy(), data.y_train, data.x_test, data.y_test)
    bad.x_train[data.y_train.argsort()[0]] = 1e38  # overflows the logits of its batch
    again = Trainer(model(), config(epochs=3, optimizer=OptimizerConfig("sgd", lr=1e30)))
    again.resume(tmp_path / "ck.npz")
    with pytest.raises(TrainingError, match=r"at epoch 2, batch \d+ \(step \d+"):
        again.fit(bad, checkpoint=tmp_path / "ck.npz")
    assert (tmp_path / "ck.npz").read_bytes() == saved
    assert not list(tmp_path.glob(".*tmp"))


def test_data_that_does_not_fit_the_model(tmp_path) -> None:  # noqa: ANN001
    d = blobs()
    good = dict(X_train=d.x_train, y_train=d.y_train, X_test=d.x_test, y_test=d.y_test)
    cases = [
        (dict(X_train=d.x_train[:, :1]), r"X_train samples have shape \[1, 4, 4\] \(16 values\), "
                                         r"the model's input takes \[2, 4, 4\]"),
        (dict(y_train=d.y_train + 5), r"y_train\[\d+\] = \d+ is not a class of the model's 3"),
        (dict(y_test=d.y_test[:-1]), "X_test has 24 samples but y_test has 23 labels"),
        (dict(y_train=d.y_train.astype(np.float32)), "y_train must be integer class labels"),
    ]
    for change, message in cases:
        np.savez(tmp_path / "d.npz", **(good | change))
        with pytest.raises(IrflowError, match=message):
            load_split(tmp_path / "d.npz", (2, 4, 4), 3)
    np.savez(tmp_path / "d.npz", X_train=d.x_train)
    with pytest.raises(IrflowError, match="missing"):
        load_split(tmp_path / "d.npz", (2, 4, 4), 3)
