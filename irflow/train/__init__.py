"""Training on irflow's IR (docs/training.md).

- `retype`: a model at another batch size / input shape / float precision;
- `grad`: reverse-mode autodiff as an IR transformation (`@train_step` in `nn`), with one
  VJP rule per op in `vjp`; `gradcheck` checks it against finite differences;
- `losses`, `optim`: loss configurations and torch.optim-style optimizers and schedules;
- `data`, `loop`: checked data splits and the training loop (masks, distillation,
  checkpoints); `cli`: `irflow train`;
- `qat`: quantization-aware training with `nn.fake_quant`.
"""
