"""A short fine-tune of a point's compressed float model, with the training API.

    [finetune]                       # in a space file (docs/search.md)
    epochs = 1
    lr = 1e-3
    optimizer = "adam"               # sgd | adam | adamw
    batch = 32
    samples = 512                    # training images used (0: all 1,437)

For a point whose pipeline is `prune{...},default,calibrate,quantize{...}`:

1. the float part without `calibrate` (prune, `default`) runs as before: pruned weights
   carry `nn.sparsity`;
2. `irflow.train.loop.Trainer` fine-tunes it on the digits training split; the loop keeps
   the prune masks (pruned weights stay zero, N:M stays N:M). When the point quantizes
   every layer alike (`wNaM`), the model trained is `irflow.train.qat.fake_quantize`'s
   (QAT: `nn.fake_quant` at every contraction input), and the trained weights go back
   into the float model (`Trainer.trained(float_model)`);
3. `calibrate` and the point's `quantize` step lower it as for post-training quantization.

Deterministic given `[search] seed` (the loop's shuffling). Simplification: a point with
per-layer mixed bits (or a float layer) is fine-tuned in float with the masks kept, not
with QAT (`fake_quantize` takes one bit width for the whole model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
KEYS: tuple[str, ...] = ("epochs", "lr", "optimizer", "batch", "samples")


@dataclass(frozen=True)
class FinetuneSpec:
    epochs: int = 1
    lr: float = 1e-3
    optimizer: str = "adam"
    batch: int = 32
    samples: int = 0  # 0: the whole training split

    def describe(self, qat: str) -> str:
        """The row's `finetune` column: `adam lr=0.001 1 epoch batch 32 512 samples, qat w4a8`."""
        n = f"{self.samples} samples" if self.samples else "all samples"
        return (f"{self.optimizer} lr={self.lr:g} {self.epochs} epoch{'s' * (self.epochs > 1)} "
                f"batch {self.batch} {n}, " + (f"qat {qat}" if qat else "float"))


def parse_finetune(table: dict[str, Any]) -> FinetuneSpec:
    """The spec from a `[finetune]` table; a bad value raises `FinetuneValueError`, whose
    `key` the space reader turns into file:line."""
    spec = FinetuneSpec()
    values: dict[str, Any] = {}
    for key in ("epochs", "batch", "samples"):
        if key in table:
            v = table[key]
            low = 0 if key == "samples" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise FinetuneValueError(
                    key, f"[finetune] {key} must be an integer >= {low}, got {v!r}")
            values[key] = v
    if "lr" in table:
        v = table["lr"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 10:
            raise FinetuneValueError("lr", f"[finetune] lr must be a number in (0, 10), "
                                     f"got {v!r}")
        values["lr"] = float(v)
    if "optimizer" in table:
        v = table["optimizer"]
        if v not in OPTIMIZERS:
            from irflow.diagnostics import did_you_mean

            raise FinetuneValueError(
                "optimizer", f"[finetune] optimizer = {v!r}: expected one of "
                f"{', '.join(OPTIMIZERS)}{did_you_mean(str(v), OPTIMIZERS)}")
        values["optimizer"] = v
    spec = FinetuneSpec(**{**spec.__dict__, **values})
    if spec.samples and spec.samples < spec.batch:
        raise FinetuneValueError("samples", f"[finetune] samples = {spec.samples} is fewer "
                                 f"than one batch ({spec.batch})")
    return spec


class FinetuneValueError(IrflowError):
    """A bad `[finetune]` value; `key` says where (the space reader adds file:line)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def uniform_bits(per_layer: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """(w_bits, a_bits) when every layer is quantized alike, else None."""
    settings = set(per_layer.values())
    if len(settings) == 1:
        w, a = settings.pop()
        if w != 32:
            return w, a
    return None


def finetune(module: ModuleOp, spec: FinetuneSpec, seed: int,
             calibration: list[dict[str, np.ndarray]],
             qat: tuple[int, int] | None) -> ModuleOp:
    """`module` (float, after prune and `default`) fine-tuned on the digits training split;
    with `qat = (w_bits, a_bits)` through fake quantization. Returns the float model with
    the trained weights (prune masks kept)."""
    from irflow.search.data import digits_split
    from irflow.train.data import Split
    from irflow.train.loop import TrainConfig, Trainer, model_io
    from irflow.train.optim import OptimizerConfig
    from irflow.train.qat import fake_quantize

    _, sample_shape, _ = model_io(module)
    split = digits_split()
    n = spec.samples or len(split["X_train"])
    x = split["X_train"][:n]
    if x[0].size != int(np.prod(sample_shape)):
        raise IrflowError(f"[finetune] digits images have {x[0].size} pixels, the model's "
                          f"input takes {list(sample_shape)}")
    x = x.reshape((len(x), *sample_shape)).astype(np.float32)
    y = split["y_train"][:n].astype(np.int64)
    # The search measures accuracy itself after lowering: no per-epoch test set here.
    data = Split(x, y, x[:0], y[:0])
    config = TrainConfig(epochs=spec.epochs, batch=spec.batch, seed=seed,
                         optimizer=OptimizerConfig(spec.optimizer, lr=spec.lr))
    trained = module if qat is None else fake_quantize(
        module, calibration, bits=qat[0], act_bits=qat[1])
    trainer = Trainer(trained, config)
    trainer.fit(data)
    return trainer.trained(module)


__all__ = ["FinetuneSpec", "FinetuneValueError", "parse_finetune", "finetune", "uniform_bits",
           "KEYS", "OPTIMIZERS"]
