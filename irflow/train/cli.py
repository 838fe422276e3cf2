"""`irflow train`: train a model's weights on an `.npz` data split.

    irflow train digits_cnn --data digits.npz --epochs 30 --batch 32 --optimizer adam \\
        --lr 2e-3 --schedule cosine -o trained.mlir --onnx trained.onnx

`-p PIPELINE` runs passes first (e.g. `prune{mode=nm n=2 m=4}`: fine-tuning keeps the
pruned weights zero); `--teacher MODEL` distills from a trained teacher; `--checkpoint F`
saves after every epoch and `--resume F` continues from one. The trained model is written
only at the end (`-o`: IR + weights `.npz`; `--onnx`: ONNX).
"""

from __future__ import annotations

import argparse
import sys

from irflow.diagnostics import IrflowError


def add_parser(sub: argparse._SubParsersAction, model_flags, pass_flags) -> None:  # noqa: ANN001
    p = sub.add_parser("train", help="train a model's weights on an .npz data split")
    p.add_argument("model", help="zoo name or model file")
    p.add_argument("--data", required=True, metavar="NPZ",
                   help="X_train, y_train, X_test, y_test (samples on axis 0)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    p.add_argument("--nesterov", action="store_true", help="SGD Nesterov momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("constant", "step", "cosine"), default="constant")
    p.add_argument("--step-size", type=int, default=10, help="epochs per step (step schedule)")
    p.add_argument("--gamma", type=float, default=0.1, help="decay factor (step schedule)")
    p.add_argument("--warmup", type=int, default=0, help="epochs of linear warmup")
    p.add_argument("--clip-norm", type=float, help="clip the global gradient L2 norm")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--teacher", metavar="MODEL", help="distill from this trained model")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the distillation term")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature")
    p.add_argument("--seed", type=int, default=0, help="initialization and shuffling seed")
    p.add_argument("-o", "--output", metavar="F.mlir", help="write the trained IR (+ .npz)")
    p.add_argument("--onnx", metavar="F.onnx", help="export the trained model to ONNX")
    p.add_argument("--checkpoint", metavar="F.npz", help="save a checkpoint after each epoch")
    p.add_argument("--resume", metavar="F.npz", help="continue from a checkpoint")
    model_flags(p)
    pass_flags(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from irflow.cli import load_model, run_passes
    from irflow.train.data import load_split
    from irflow.train.loop import TrainConfig, Trainer, model_io
    from irflow.train.optim import OptimizerConfig, ScheduleConfig

    module, name = load_model(args.model, input_shapes=args.input_shape, seed=args.seed,
                              weights=args.weights)
    run_passes(module, args.pipeline, args)
    _, sample_shape, classes = model_io(module)
    data = load_split(args.data, sample_shape, classes)
    per_epoch = len(data.x_train) // args.batch if args.batch > 0 else 0
    if args.batch < 1:
        raise IrflowError(f"--batch must be >= 1, got {args.batch}")
    config = TrainConfig(
        epochs=args.epochs, batch=args.batch, seed=args.seed,
        optimizer=OptimizerConfig(args.optimizer, lr=args.lr, momentum=args.momentum,
                                  nesterov=args.nesterov, weight_decay=args.weight_decay),
        schedule=ScheduleConfig(args.schedule, step_size=max(1, args.step_size * per_epoch),
                                gamma=args.gamma, total=max(1, args.epochs * per_epoch),
                                warmup=args.warmup * per_epoch),
        clip_norm=args.clip_norm, label_smoothing=args.label_smoothing,
        distill_alpha=args.alpha, temperature=args.temperature)
    teacher = None
    if args.teacher:
        teacher, _ = load_model(args.teacher, input_shapes=args.input_shape, seed=args.seed)
    trainer = Trainer(module, config, teacher=teacher)
    if args.resume:
        trainer.resume(args.resume)
    log = None if args.quiet else (lambda s: print(
        f"epoch {s.epoch}/{config.epochs}: loss {s.loss:.4f}, train acc {100 * s.train_acc:.2f} %, "
        f"test acc {100 * s.test_acc:.2f} % ({s.seconds:.2f} s)", file=sys.stderr))
    history = trainer.fit(data, progress=not args.quiet, checkpoint=args.checkpoint,
                          on_epoch=log)
    trained = trainer.trained()
    if args.output:
        from irflow.io import save

        save(trained, args.output)
    if args.onnx:
        from irflow.exporters.onnx import export_onnx

        export_onnx(trained, args.onnx)
    if history and not args.quiet:
        last = history[-1]
        mean = sum(h.seconds for h in history) / len(history)
        print(f"{name}: test accuracy {100 * last.test_acc:.2f} % after {last.epoch} epochs "
              f"({mean:.2f} s/epoch)", file=sys.stderr)
    return 0
