"""Malformed DSL programs: each gives one `ParseError` with its message and exact location.

Every case is (source, line:col, message fragment). Sources are written so that the
expected position can be read off the text: line 1 is the first line of the string.
"""

from __future__ import annotations

import numpy as np
import pytest

from irflow.diagnostics import IrflowError, ParseError
from irflow.frontends.dsl import compile_file, compile_source

HEAD = "model m(x: f32[1, 3, 8, 8]) {\n"

CASES: list[tuple[str, str, str, str]] = [
    # (id, source, "line:col", expected message fragment)
    ("misspelled-layer", HEAD + "  y = rleu(x)\n  return y\n}",
     "2:7", "unknown layer or block 'rleu'; did you mean 'relu'?"),
    ("misspelled-option", HEAD + "  y = conv2d(x, out=4, kernel=3, strid=2)\n  return y\n}",
     "2:34", "conv2d has no option 'strid'; did you mean 'stride'?"),
    ("misspelled-variable", HEAD + "  conv1 = conv2d(x, out=4, kernel=3)\n  y = relu(conv)\n"
     "  return y\n}",
     "3:12", "undefined variable 'conv'; did you mean 'conv1'?"),
    ("misspelled-block",
     "block basic(x) {\n  return relu(x)\n}\n" + HEAD + "  y = basik(x)\n  return y\n}",
     "5:7", "unknown layer or block 'basik'; did you mean 'basic'?"),
    ("misspelled-block-parameter",
     "block basic(x, planes) {\n  return relu(x)\n}\n" + HEAD + "  y = basic(x, plane=4)\n"
     "  return y\n}",
     "5:16", "block 'basic' has no parameter 'plane'; did you mean 'planes'?"),
    ("missing-close-paren", HEAD + "  y = conv2d(x, out=4, kernel=3\n  return y\n}",
     "3:3", "unexpected 'return'; expected ')' or ','"),
    ("unclosed-brace-at-eof", HEAD + "  y = relu(x)\n",
     "2:14", "unexpected end of input: '{' at 1:29 is not closed"),
    ("bad-character", HEAD + "  y = relu(x) $\n  return y\n}",
     "2:15", "unexpected character '$'"),
    ("call-without-assignment", HEAD + "  relu(x)\n  return x\n}",
     "2:3", "a call to 'relu' cannot stand alone"),
    ("colon-instead-of-equals", HEAD + "  y = conv2d(x, out: 4)\n  return y\n}",
     "2:20", "options are written `name=value`"),
    ("wrong-arity", HEAD + "  y = add(x)\n  return y\n}",
     "2:7", "add expects 2 tensor arguments, got 1"),
    ("too-many-tensors", HEAD + "  y = relu(x, x)\n  return y\n}",
     "2:7", "relu expects 1 tensor argument, got 2"),
    ("missing-required-option", HEAD + "  y = conv2d(x, out=4)\n  return y\n}",
     "2:7", "conv2d needs option 'kernel'"),
    ("option-of-wrong-kind", HEAD + "  y = conv2d(x, out=4, kernel=3, bias=1)\n  return y\n}",
     "2:39", "conv2d option 'bias' expects true or false, got 1"),
    ("duplicate-name", HEAD + "  y = relu(x)\n  y = relu6(x)\n  return y\n}",
     "3:3", "'y' is already defined at <string>:2:3"),
    ("undefined-variable", HEAD + "  y = relu(z)\n  return y\n}",
     "2:12", "undefined variable 'z'"),
    ("shape-mismatch", HEAD + "  y = linear(x, out=4)\n  z = add(y, x)\n  return z\n}",
     "3:7", "nn.add expects broadcast-compatible operands, got 1x3x8x4 and 1x3x8x8"),
    ("shape-error-inside-block",
     "block b(x, ch) {\n  c = conv2d(x, out=ch, kernel=3)\n  return add(c, x)\n}\n"
     + HEAD + "  y = b(x, ch=4)\n  return y\n}",
     "3:10", "got 1x4x6x6 and 1x3x8x8 (in block 'b' instantiated at <string>:6:7)"),
    ("conv-kernel-too-big", HEAD + "  y = conv2d(x, out=4, kernel=9)\n  return y\n}",
     "2:7", "nn.conv2d expects the kernel 9x9 to fit the padded input"),
    ("groups-do-not-divide", HEAD + "  y = conv2d(x, out=4, kernel=3, groups=2)\n  return y\n}",
     "2:7", "conv2d expects in (3) and out (4) channels divisible by groups (2)"),
    ("weighted-layer-in-return", HEAD + "  return linear(x, out=4)\n}",
     "2:10", "'linear' creates weights, so it needs a name"),
    ("two-weighted-layers-one-statement",
     HEAD + "  y = linear(linear(x, out=4), out=2)\n  return y\n}",
     "2:7", "'y' already names the 'linear' in this statement"),
    ("no-return", HEAD + "  y = relu(x)\n}",
     "3:1", "the model ends without `return`"),
    ("no-model", "block b(x) {\n  return x\n}\n",
     "1:1", "no model in this file"),
    ("unknown-element-type", "model m(x: f33[1, 4]) {\n  return x\n}",
     "1:12", "unknown element type 'f33'; did you mean 'f32'?"),
    ("positional-after-option", HEAD + "  y = concat(x, axis=1, x)\n  return y\n}",
     "2:25", "positional arguments must come before options"),
    ("reshape-element-count", HEAD + "  y = reshape(x, shape=[1, 100])\n  return y\n}",
     "2:7", "nn.reshape expects the same number of elements, got 1x3x8x8 to 1x100"),
    ("tensor-arithmetic", HEAD + "  y = x + x\n  return y\n}",
     "2:7", "'+' works on compile-time numbers, not tensors (use add(a, b) for tensors)"),
    ("condition-not-bool", HEAD + "  if 3 {\n    y = relu(x)\n  }\n  return x\n}",
     "2:6", "a condition must be true or false, got 3"),
    ("block-missing-parameter",
     "block b(x, ch) {\n  return relu(x)\n}\n" + HEAD + "  y = b(x)\n  return y\n}",
     "5:7", "block 'b' needs parameter 'ch'"),
    ("unpack-count", HEAD + "  a, b = split(x, axis=1, parts=3)\n  return a\n}",
     "2:10", "expected 2 values on the right, got 3"),
    ("misspelled-keyword-model", "modle m(x: f32[1]) {\n  return x\n}",
     "1:1", "unexpected name 'modle'; expected 'block' or 'model'; did you mean 'model'?"),
    ("misspelled-keyword-return", HEAD + "  y = relu(x)\n  retrun y\n}",
     "3:3", "unknown statement 'retrun'; did you mean 'return'?"),
    ("misspelled-keyword-else", HEAD + "  if true {\n    y = relu(x)\n  } esle {\n  }\n"
     "  return x\n}",
     "4:5", "unknown statement 'esle'; did you mean 'else'?"),
    ("duplicate-block-parameter",
     "block b(x, ch, ch) {\n  return x\n}\n" + HEAD + "  return x\n}",
     "1:16", "block 'b' has two parameters named 'ch'"),
    ("duplicate-block",
     "block b(x) {\n  return x\n}\nblock b(y) {\n  return y\n}\n" + HEAD + "  return x\n}",
     "4:7", "block 'b' is already defined at <string>:1:1"),
    ("keyword-as-name", HEAD + "  return = relu(x)\n}",
     "2:10", "unexpected '='"),
]


@pytest.mark.parametrize("source,where,fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_program(source: str, where: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        compile_source(source)
    err = info.value
    assert err.where == f"<string>:{where}", str(err)
    assert fragment in err.message, str(err)
    text = str(err)
    assert text.startswith(f"<string>:{where}: error: ") and "\n" not in text


def test_enough_cases() -> None:
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)


def test_filename_appears_in_location(tmp_path) -> None:
    path = tmp_path / "net.irf"
    path.write_text(HEAD + "  y = rleu(x)\n  return y\n}")
    with pytest.raises(ParseError) as info:
        compile_file(path)
    assert str(info.value).startswith(f"{path}:2:7: error: unknown layer")


def test_missing_weight_in_npz_is_named(tmp_path) -> None:
    src = HEAD + "  fc = linear(x, out=4)\n  return fc\n}"
    npz = tmp_path / "w.npz"
    np.savez(npz, **{"fc.weight": np.zeros((4, 8), np.float32)})
    with pytest.raises(ParseError) as info:
        compile_source(src, "m.irf", weights=npz)
    assert info.value.where == "m.irf:2:8"
    assert f"weight 'fc.bias' is missing from {npz}" in info.value.message


def test_misshaped_weight_in_npz_is_named(tmp_path) -> None:
    src = HEAD + "  fc = linear(x, out=4)\n  return fc\n}"
    npz = tmp_path / "w.npz"
    np.savez(npz, **{"fc.weight": np.zeros((4, 7), np.float32),
                     "fc.bias": np.zeros(4, np.float32)})
    with pytest.raises(ParseError) as info:
        compile_source(src, "m.irf", weights=npz)
    assert "weight 'fc.weight'" in info.value.message
    assert "has shape [4, 7], but linear needs [4, 8]" in info.value.message


def test_missing_weights_file_and_source_file(tmp_path) -> None:
    with pytest.raises(IrflowError, match="no such weights file"):
        compile_source(HEAD + "  return x\n}", weights=tmp_path / "nope.npz")
    with pytest.raises(IrflowError, match="cannot read"):
        compile_file(tmp_path / "nope.irf")


def _mutations(text: str, rng: np.random.Generator, count: int):
    """Seeded single edits: delete, duplicate or replace a character, or swap two tokens."""
    alphabet = list("()[]{},=:.#-+*/<>!\"x1 \n") + ["return", "if", "model", "block", "relu"]
    for _ in range(count):
        i = int(rng.integers(len(text)))
        kind = int(rng.integers(4))
        if kind == 0:
            yield text[:i] + text[i + 1:]
        elif kind == 1:
            yield text[:i] + text[i] + text[i:]
        elif kind == 2:
            yield text[:i] + str(rng.choice(alphabet)) + text[i + 1:]
        else:
            words = text.split(" ")
            a, b = (int(v) for v in rng.integers(len(words), size=2))
            words[a], words[b] = words[b], words[a]
            yield " ".join(words)


def test_mutated_programs_fail_cleanly_or_compile() -> None:
    """No edit of a valid program escapes as anything but an IrflowError with a location."""
    from irflow.zoo import source

    rng = np.random.default_rng(2024)  # the seed is fixed so failures reproduce
    failures = 0
    for text in (source("lenet5"), source("digits_cnn"), BLOCKY):
        for mutated in _mutations(text, rng, 150):
            try:
                compile_source(mutated, "fuzz.irf")
            except IrflowError as e:
                failures += 1
                rendered = str(e)
                assert "\n" not in rendered, (mutated, rendered)
                assert rendered.startswith("fuzz.irf:"), (mutated, rendered)
    assert failures > 200  # most edits break the program


BLOCKY = """\
block unit(x, ch, stride=1) {
  conv = conv2d(x, out=ch, kernel=3, stride=stride, pad=1, bias=false)
  bn = batchnorm(conv)
  if stride == 1 and shape(x)[1] == ch {
    return relu(add(bn, x))
  }
  return relu(bn)
}
model m(x: f32[1, 4, 8, 8]) {
  a = unit(x, ch=4)
  b = unit(a, ch=8, stride=2)
  parts = split(b, axis=1, parts=2)
  y = concat(parts[0], parts[1], axis=1)
  return y
}
"""
