"""Output error of the decoder under group-wise weight-only quantization, against float32.

    .venv/bin/python bench/bench_llm_quant.py [--seq 64] [--model decoder-15m]

The prefill of a fixed token sequence (seeded, `--seq` tokens) through each precision;
per precision: the logits' max relative error (max |Δ| / max |float32|), next-token
agreement (argmax equal, over the positions), and the perplexity of the sequence's own
next tokens under the model, beside float32's. The weights are the zoo's seeded ones
(not trained), so absolute perplexities are near the vocabulary size; the change is the
figure of merit.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

PRECISIONS = {
    "fp16": "convert-float",
    "w8a16 g32": "convert-float,quantize-groups{bits=8 group=32}",
    "w4a16 g32": "convert-float,quantize-groups{bits=4 group=32}",
    "w4a16 g128": "convert-float,quantize-groups{bits=4 group=128}",
    "w4a16 g128 zp": "convert-float,quantize-groups{bits=4 group=128 zero-point=true}",
    "w4a32 g32": "quantize-groups{bits=4 group=32}",
    "w4a8 g32": "convert-float,quantize-groups{bits=4 group=32},calibrate,"
                "quantize-groups{act-bits=8}",
}


def perplexity(logits: np.ndarray, tokens: np.ndarray) -> float:
    """exp(mean −log p(token[i+1] | ..i)) over the sequence."""
    z = logits[0, :-1].astype(np.float64)
    z -= z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -logp[np.arange(len(z)), tokens[0, 1:]]
    return float(np.exp(nll.mean()))


def main(argv: list[str] | None = None) -> int:
    from irflow import zoo
    from irflow.backends.reference import run
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline
    from irflow.zoo import decoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="decoder-15m")
    ap.add_argument("--seq", type=int, default=64)
    args = ap.parse_args(argv)
    vocab = decoder.PRESETS[args.model].vocab
    tokens = np.random.default_rng(2024).integers(0, vocab, (1, args.seq))
    ref = run(zoo.load(args.model, entry="prefill", seq=args.seq), {"input_ids": tokens})
    base = ref["logits"].astype(np.float64)
    ppl0 = perplexity(base, tokens)
    print(f"{args.model}, prefill of {args.seq} seeded tokens; float32 perplexity {ppl0:.1f}")
    print(f"{'precision':16s} {'max rel err':>12s} {'next-token agree':>17s} {'perplexity':>11s} "
          f"{'change':>8s}")
    for name, spec in PRECISIONS.items():
        module = zoo.load(args.model, entry="prefill", seq=args.seq)
        calib = np.random.default_rng(7).integers(0, vocab, (4, 1, args.seq))
        set_calibration_data(module, [{"input_ids": c} for c in calib])  # other tokens
        run_pipeline(module, spec)
        got = run(module, {"input_ids": tokens})["logits"].astype(np.float64)
        err = np.abs(got - base).max() / np.abs(base).max()
        agree = (got.argmax(-1) == base.argmax(-1)).mean()
        ppl = perplexity(got, tokens)
        print(f"{name:16s} {err:12.4f} {100 * agree:16.1f}% {ppl:11.1f} "
              f"{100 * (ppl / ppl0 - 1):+7.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
