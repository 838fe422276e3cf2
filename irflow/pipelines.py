"""Named pipelines, in one readable place.

Each pipeline is a tuple of pass specs in pipeline syntax (`name{option=value ...}`),
one step per line with a comment saying why it is there. A named pipeline is usable
wherever a pass is, and expands in place:

    irflow opt model.irf -p default
    irflow opt model.irf -p 'default,tile{sizes="f=16,oh=14"}'

To add one: define a tuple below and add it to `PIPELINES`. A pipeline may name
another pipeline (it expands recursively); a name must not be both a pass and a
pipeline (a test checks this).
"""

from __future__ import annotations

# The float graph-level cleanup every other pipeline starts from.
DEFAULT: tuple[str, ...] = (
    # Inference batchnorm is an affine map per channel: fold it into the conv's weight
    # and bias, so it costs nothing at run time and later passes see one op, not two.
    "fold-batchnorm",
    # relu/relu6/... right after a conv, linear, matmul or add becomes the producer's
    # `act`: one pass over the output instead of two (the accelerator applies it on write-back).
    "fuse-activation",
    # Folds and local simplifications (xDSL's canonicalizer: op folders + canonical patterns).
    "canonicalize",
    # Two identical pure ops on the same operands become one (shared constants, repeated
    # reshapes after import).
    "cse",
    # Remove what the steps above left unused: the old batchnorm parameters, dead constants.
    "dce",
)

PIPELINES: dict[str, tuple[str, ...]] = {
    "default": DEFAULT,
    # int8 weights (per output channel) and activations; ranges from --calib data (else random).
    "int8": ("default", "calibrate", "quantize{bits=8 granularity=per-channel}"),
    # int4 weights (per output channel), int8 activations.
    "w4a8": ("default", "calibrate", "quantize{bits=4 granularity=per-channel}"),
    # int8 weights dequantized in front of float ops: smaller weights, no calibration needed.
    "int8-weight-only": ("default", "quantize{bits=8 weight-only=true}"),
    # 2:4 on the trained weights (fold-batchnorm, in default, keeps `nn.sparsity`), then cleanup.
    "sparse": ("prune{mode=nm n=2 m=4}", "default"),
    # sparse, then int8 (calibrate on --calib data); quantize keeps the 2:4 attribute.
    "int8-sparse": ("sparse", "calibrate", "quantize{bits=8 granularity=per-channel}"),
    # Half of every prunable channel group removed (L1), then int8. fold=bias puts a removed
    # channel's constant output into the consumer's bias (its interior value), so the
    # pruned model has the dense model's ops, only thinner: what a channel-pruned network
    # costs. fold=exact (prune's default, exact without fine-tuning) adds a full constant
    # map (nn.add) after each consumer whose correction differs at the zero-padded borders:
    # on ResNet-18 fp32 that is 16 extra adds, +25 % model bytes and +31 % DRAM bytes,
    # an artifact of the proof of exactness, not of channel pruning.
    "int8-channel50": ("prune{mode=channel ratio=0.5 fold=bias}", "default", "calibrate",
                       "quantize{bits=8 granularity=per-channel}"),
}

# What `irflow run --pipeline NAME` puts side by side (irflow/compare.py): stages are
# named pipelines, each run on a fresh copy of the model and simulated on the same
# machine; the first stage is the baseline of every ratio. `--compare A,B,...` picks
# any stages; `--no-compare` skips the comparison.
COMPARISONS: dict[str, tuple[str, ...]] = {
    # what int8 buys over fp32
    "int8": ("default", "int8"),
    # what int4 weights (int8 activations) buy over fp32
    "w4a8": ("default", "w4a8"),
    # what sparsity buys on top of int8: 2:4 (half the MAC cycles, compressed weights)
    # and 50 % of the channels removed (a smaller network)
    "int8-sparse": ("default", "int8", "int8-sparse", "int8-channel50"),
}
