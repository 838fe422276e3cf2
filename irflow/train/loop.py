"""The training loop: `@train_step` (from `grad`) run by the reference executor over
shuffled mini-batches, an optimizer updating the weights, test accuracy per epoch.

    >>> trainer = Trainer(zoo.load("digits_cnn", seed=0), TrainConfig(epochs=30, batch=32))
    >>> history = trainer.fit(load_split("digits.npz", (1, 8, 8), 10))
    >>> trained = trainer.trained()        # the model (batch as loaded) with the new weights

- deterministic given the seed: epoch e visits the training set in the order of
  `np.random.default_rng([seed, e]).permutation`; the last incomplete batch is dropped
  (torch's `drop_last=True`), so the static-shape step program is compiled once;
- weights that `prune` left sparse (an `nn.sparsity` attribute) keep their zeros: the
  mask multiplies their gradient and the weight after every step, so an N:M pattern stays
  N:M (removed channels are gone from the shapes already);
- with a teacher, the loss is `Distillation` and the teacher's logits are inputs;
- a non-finite loss stops training with an error naming the epoch and the batch;
- `checkpoint=PATH` writes the weights, optimizer state and epoch after every epoch,
  atomically (a crash leaves the previous checkpoint whole); `resume(PATH)` continues
  and reproduces the uninterrupted run.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.backends.reference import compile_function
from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.fileio import write_output
from irflow.graph import input_names, main_func
from irflow.progress import Progress
from irflow.train.data import Split
from irflow.train.grad import GRAD_PREFIX, STEP_FUNC, grad, signature
from irflow.train.losses import CrossEntropy, Distillation
from irflow.train.optim import (
    OptimizerConfig,
    ScheduleConfig,
    clip_grad_norm,
    make_optimizer,
)
from irflow.train.retype import retype
from irflow.weights import WeightStore, attach_weights, weights_of


class TrainingError(IrflowError):
    """Training cannot go on (a non-finite loss, a checkpoint that does not fit)."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch: int = 32
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    clip_norm: float | None = None
    label_smoothing: float = 0.0
    distill_alpha: float = 0.5     # with a teacher: weight of the KL term
    temperature: float = 4.0       # with a teacher

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch < 1:
            raise IrflowError(f"epochs must be >= 0 and batch >= 1, got {self.epochs} and "
                              f"{self.batch}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise IrflowError(f"clip norm must be > 0, got {self.clip_norm}")


@dataclass(frozen=True)
class EpochStats:
    epoch: int          # 1-based
    loss: float         # mean training loss over the epoch's batches
    train_acc: float    # accuracy on the training batches (weights as they were then)
    test_acc: float
    lr: float
    seconds: float      # the training batches (not the test evaluation)


def model_io(module: ModuleOp) -> tuple[str, tuple[int, ...], int]:
    """(input name, per-sample input shape, number of classes) of a classifier."""
    fn = main_func(module)
    names = input_names(fn)
    if len(names) != 1:
        raise IrflowError(f"training expects a model with one input, got {len(names)}")
    ret = fn.get_return_op()
    assert ret is not None
    out = nn.shape_of(ret.operands[0])
    if len(out) != 2:
        raise IrflowError(f"training expects a classifier with logits [batch, classes], got "
                          f"output {nn.format_shape(out)}")
    return names[0], nn.shape_of(fn.body.blocks[0].args[0])[1:], out[1]


def sparsity_masks(module: ModuleOp, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """Keep masks of the weights `prune` made sparse (constants with `nn.sparsity`)."""
    store = weights_of(module)
    masks: dict[str, np.ndarray] = {}
    for op in main_func(module).walk():
        if (isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)
                and "nn.sparsity" in op.attributes and op.value.key in names):
            masks[op.value.key] = store[op.value.key] != 0
    return masks


class Trainer:
    """Trains `module`'s weights (see the module docstring)."""

    def __init__(self, module: ModuleOp, config: TrainConfig, *,
                 teacher: ModuleOp | None = None, trainable: list[str] | None = None):
        self.module = module
        self.config = config
        self.input_name, self.sample_shape, self.classes = model_io(module)
        base = CrossEntropy(config.label_smoothing)
        loss = base if teacher is None else Distillation(base, config.distill_alpha,
                                                         config.temperature)
        batched = retype(module, batch=config.batch)
        step = grad(batched, loss, trainable)
        self.step_module = step
        self.signature = signature(step)
        self.program = compile_function(step, STEP_FUNC)
        store = weights_of(module)
        self.params = {n: np.array(store[n], dtype=np.float32) for n in self.signature.params}
        self.masks = sparsity_masks(module, self.signature.params)
        self.optimizer = make_optimizer(config.optimizer, self.params)
        self.teacher = None
        if teacher is not None:
            t_in, t_shape, t_classes = model_io(teacher)
            if (t_shape, t_classes) != (self.sample_shape, self.classes):
                raise IrflowError(
                    f"teacher takes {list(t_shape)} and predicts {t_classes} classes; the "
                    f"student {list(self.sample_shape)} and {self.classes}")
            self.teacher = (t_in, compile_function(retype(teacher, batch=config.batch)))
        self.epoch = 0
        self.steps = 0
        self.history: list[EpochStats] = []

    # -- training -------------------------------------------------------------------------

    def fit(self, data: Split, *, progress: bool = False, checkpoint: str | Path | None = None,
            on_epoch: Callable[[EpochStats], None] | None = None) -> list[EpochStats]:
        """Train up to `config.epochs` epochs (counting those already done when resumed)."""
        c = self.config
        n_batches = len(data.x_train) // c.batch
        if n_batches == 0:
            raise TrainingError(f"batch {c.batch} is larger than the {len(data.x_train)} "
                                "training samples")
        while self.epoch < c.epochs:
            start = time.perf_counter()
            order = np.random.default_rng([c.seed, self.epoch]).permutation(len(data.x_train))
            total_loss, correct = 0.0, 0
            bar = _progress(n_batches, f"epoch {self.epoch + 1}/{c.epochs}", progress)
            lr = c.optimizer.lr
            for b in range(n_batches):
                idx = order[b * c.batch:(b + 1) * c.batch]
                lr = c.schedule.lr(c.optimizer.lr, self.steps)
                loss, logits = self._step(data.x_train[idx], data.y_train[idx], lr, b)
                total_loss += loss
                correct += int((logits.argmax(1) == data.y_train[idx]).sum())
                bar.advance()
                bar.note(loss=f"{total_loss / (b + 1):.4f}")
            self.epoch += 1
            seconds = time.perf_counter() - start
            test_acc = self.evaluate(data.x_test, data.y_test)
            stats = EpochStats(self.epoch, total_loss / n_batches,
                               correct / (n_batches * c.batch), test_acc, lr, seconds)
            bar.note(loss=f"{stats.loss:.4f}", acc=f"{stats.train_acc:.4f}",
                     test=f"{test_acc:.4f}")
            bar.close()
            self.history.append(stats)
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            if on_epoch is not None:
                on_epoch(stats)
        return self.history

    def _step(self, x: np.ndarray, y: np.ndarray, lr: float, batch: int
              ) -> tuple[float, np.ndarray]:
        feed: dict[str, np.ndarray] = {self.input_name: x, "labels": y, **self.params}
        if self.teacher is not None:
            t_in, t_prog = self.teacher
            feed["teacher_logits"] = next(iter(t_prog.run({t_in: x}).values()))
        out = self.program.run(feed)
        loss = float(out["loss"])
        grads = {n: out[GRAD_PREFIX + n] for n in self.params}
        if not math.isfinite(loss) or not all(np.isfinite(g).all() for g in grads.values()):
            what = f"loss is {loss}" if not math.isfinite(loss) else "a gradient is not finite"
            raise TrainingError(
                f"{what} at epoch {self.epoch + 1}, batch {batch + 1} (step {self.steps + 1}, "
                f"lr {lr:g}); try a lower --lr or --clip-norm")
        if self.config.clip_norm is not None:
            clip_grad_norm(grads, self.config.clip_norm)
        for n, m in self.masks.items():
            grads[n] *= m
        self.optimizer.step(grads, lr)
        for n, m in self.masks.items():
            self.params[n] *= m  # weight decay and momentum must not revive pruned weights
        self.steps += 1
        return loss, out[self.signature.outputs[0]]

    # -- evaluation and results -----------------------------------------------------------

    def trained(self, module: ModuleOp | None = None) -> ModuleOp:
        """A copy of `module` (default: the trained one) with the trained weights."""
        module = module if module is not None else self.module
        new = module.clone()
        store = WeightStore(dict(weights_of(module).items()))
        for n, p in self.params.items():
            if n in store:
                store[n] = p.copy()
        return attach_weights(new, store)

    def evaluate(self, x: np.ndarray, y: np.ndarray, chunk: int = 512) -> float:
        """Top-1 accuracy of the current weights on (x, y)."""
        return accuracy(self.trained(), x, y, chunk)

    # -- checkpoints ----------------------------------------------------------------------

    def save_checkpoint(self, path: str | Path) -> None:
        arrays = {f"param/{n}": p for n, p in self.params.items()}
        arrays |= {f"opt/{k}": v for k, v in self.optimizer.state_dict().items()}
        arrays["epoch"] = np.asarray(self.epoch)
        arrays["steps"] = np.asarray(self.steps)
        arrays["history"] = np.asarray([list(asdict(h).values()) for h in self.history],
                                       np.float64).reshape(-1, 6)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_output(path, buf.getvalue())

    def resume(self, path: str | Path) -> None:
        from irflow.weights import read_npz

        arrays = read_npz(path, "a checkpoint", TrainingError)
        params = {k.removeprefix("param/"): v for k, v in arrays.items()
                  if k.startswith("param/")}
        if set(params) != set(self.params) or any(
                params[n].shape != p.shape for n, p in self.params.items()):
            raise TrainingError(f"{path}: checkpoint weights do not fit this model "
                                f"(checkpoint: {sorted(params)[:4]}..., model: "
                                f"{sorted(self.params)[:4]}...)")
        for n, p in params.items():
            self.params[n][...] = p
        self.optimizer.load_state_dict({k.removeprefix("opt/"): v for k, v in arrays.items()
                                        if k.startswith("opt/")})
        self.epoch = int(arrays["epoch"])
        self.steps = int(arrays["steps"])
        self.history = [EpochStats(int(r[0]), *map(float, r[1:])) for r in arrays["history"]]


def accuracy(module: ModuleOp, x: np.ndarray, y: np.ndarray, chunk: int = 512) -> float:
    """Top-1 accuracy of a classifier on (x, y), in chunks of `chunk` samples."""
    name, _, _ = model_io(module)
    programs: dict[int, object] = {}
    correct = 0
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        prog = programs.get(len(xb))
        if prog is None:
            prog = programs[len(xb)] = compile_function(retype(module, batch=len(xb)))
        logits = next(iter(prog.run({name: xb}).values()))  # type: ignore[attr-defined]
        correct += int((logits.argmax(1) == y[i:i + chunk]).sum())
    return correct / max(1, len(x))


def _progress(total: int, desc: str, enabled: bool) -> Progress:
    """An epoch's bar: shown when asked for and stdout is a terminal (irflow.progress)."""
    return Progress(total, desc, unit="batch", enabled=None if enabled else False, leave=True)
