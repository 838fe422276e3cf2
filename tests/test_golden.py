"""Golden IR tests: every `tests/filecheck/**/*.mlir`, one test per `// -----` case.

The conventions are in `tests/filecheck/README.md`. In short: a file under `passes/` runs
the pipeline named by its file name (or its `// PIPELINE:` line) and checks the printed
result with FileCheck; a file under `dialects/` only parses, verifies and prints; an
`invalid.mlir` file expects each case to fail with its `// expected-error {{...}}`.
Every checked output must also round-trip (print -> parse -> print identical, and the
generic form parses back structurally equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from filecheck import Case, filecheck, split_cases
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError as XdslParseError
from xdsl.utils.exceptions import VerifyException

from irflow.context import make_context
from irflow.diagnostics import PassError, VerifyError
from irflow.io import parse_mlir, print_module, verify_module
from irflow.pipeline import run_pipeline
from irflow.weights import WeightStore, attach_weights, weights_path

ROOT = Path(__file__).parent / "filecheck"
FILES = sorted(ROOT.rglob("*.mlir"))

PIPELINE_LINE = re.compile(r"^\s*//\s*PIPELINE\s*:(.*)$", re.MULTILINE)
EXPECTATION = re.compile(r"//\s*expected-(\w+)(@[+-]\d+)?\s*(.*)$")


def _params() -> list[object]:
    params = []
    for path in FILES:
        rel = path.relative_to(ROOT).as_posix()
        for case in split_cases(path.read_text()):
            if not _has_ir(case):
                continue  # a header of comments (conventions, a file-wide PIPELINE line)
            params.append(pytest.param(path, case, id=f"{rel}:{case.first_line}"))
    return params


def _has_ir(case: Case) -> bool:
    return any(line.strip() and not line.strip().startswith("//")
               for line in case.text.splitlines())


def test_golden_files_exist():
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {"dialects/nn/ops.mlir", "dialects/nn/invalid.mlir"} <= names
    assert any(n.startswith("passes/") for n in names)


# --------------------------------------------------------------------------------------
# Parsing with op line numbers (for `expected-error` on the op's line)


class _RecordingParser(Parser):
    """A parser that remembers the source line each op started on."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.op_lines: dict[int, int] = {}

    def parse_operation(self) -> Operation:
        line = self._current_token.span.get_location().line
        op = super().parse_operation()
        self.op_lines[id(op)] = line
        return op


def _padded(case: Case) -> str:
    """The case text preceded by blank lines, so parser line numbers are file line numbers."""
    return "\n" * (case.first_line - 1) + case.text


def _load(path: Path, case: Case) -> ModuleOp:
    module = parse_mlir(_padded(case), str(path))
    npz = weights_path(path)
    return attach_weights(module, WeightStore.load(npz) if npz.exists() else WeightStore())


def _printed(module: ModuleOp) -> str:
    """The custom form with source locations, where an op has one."""
    return print_module(module, debuginfo=True).replace(" loc(unknown)", "")


def _assert_round_trips(text: str, path: Path) -> None:
    again = _printed(parse_mlir(text, f"{path} (printed)"))
    assert again == text, "print -> parse -> print changed the IR"
    module = parse_mlir(text, f"{path} (printed)")
    generic = print_module(module, generic=True, debuginfo=True)
    assert parse_mlir(generic, f"{path} (generic)").is_structurally_equivalent(module), (
        "the generic form does not parse back to the same IR"
    )


def _pipeline(path: Path, case: Case, cases: list[Case]) -> str:
    own = PIPELINE_LINE.findall(case.text)
    header = PIPELINE_LINE.findall(cases[0].text) if cases else []
    if len(own) > 1:
        pytest.fail(f"{path}:{case.first_line}: more than one // PIPELINE: line in one case")
    if own:
        return own[0].strip()
    if header:
        return header[0].strip()
    parts = path.relative_to(ROOT).parts
    return path.stem if parts[0] == "passes" else ""


# --------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("path,case", [p for p in _params()
                                       if "invalid" not in p.values[0].name])  # type: ignore[attr-defined]
def test_check(path: Path, case: Case):
    pipeline = _pipeline(path, case, split_cases(path.read_text()))
    module = _load(path, case)
    if pipeline:
        run_pipeline(module, pipeline)
    text = _printed(module)
    filecheck(case.text, text, filename=str(path.relative_to(ROOT.parent)),
              input_name=f"output of '{pipeline or 'parse'}'", first_line=case.first_line)
    _assert_round_trips(text, path)


@dataclass(frozen=True)
class _Expected:
    line: int
    message: str


def _expectations(path: Path, case: Case) -> list[_Expected]:
    out = []
    for i, line in enumerate(case.text.splitlines()):
        m = EXPECTATION.search(line)
        if m is None:
            continue
        lineno = case.first_line + i
        kind, offset, rest = m.groups()
        where = f"{path}:{lineno}"
        if kind != "error":
            pytest.fail(f"{where}: only 'expected-error' is supported, got 'expected-{kind}'")
        body = re.fullmatch(r"\{\{(.*)\}\}\s*", rest)
        if body is None or not body.group(1).strip():
            pytest.fail(f"{where}: expected 'expected-error {{{{message}}}}', got '{line.strip()}'")
        out.append(_Expected(lineno + int(offset[1:] if offset else 0), body.group(1).strip()))
    return out


@pytest.mark.parametrize("path,case", [p for p in _params()
                                       if "invalid" in p.values[0].name])  # type: ignore[attr-defined]
def test_diagnostics(path: Path, case: Case):
    check_diagnostics(path, case)


def check_diagnostics(path: Path, case: Case) -> None:
    """The case fails with its one expected error, on the expected line."""
    expected = _expectations(path, case)
    if len(expected) != 1:
        pytest.fail(f"{path}:{case.first_line}: each case expects exactly one error "
                    f"(found {len(expected)}); split cases with // -----")
    (want,) = expected
    parser = _RecordingParser(make_context(), _padded(case), str(path))
    try:
        module = parser.parse_module()
    except XdslParseError as e:
        loc = e.span.get_location()
        got_line, got = loc.line, e.msg
    except VerifyException as e:  # attribute verifiers run while parsing
        got_line, got = parser._current_token.span.get_location().line, str(e)
    else:
        try:
            verify_module(module)
        except VerifyError as e:
            assert isinstance(e.where, Operation)
            got_line, got = parser.op_lines.get(id(e.where), -1), e.message
        else:
            pytest.fail(f"{path}:{want.line}: expected error '{want.message}', "
                        "but the IR verified")
    assert want.message in got, f"{path}:{want.line}: expected '{want.message}', got '{got}'"
    assert got_line == want.line, (
        f"{path}: error '{got}' reported on line {got_line}, expected on line {want.line}"
    )


_BAD_ADD = ("func.func @f(%a: tensor<2xf32>, %b: tensor<3xf32>) -> tensor<2xf32> {{\n"
            "  %0 = nn.add %a, %b : (tensor<2xf32>, tensor<3xf32>) -> tensor<2xf32>{same}\n"
            "  func.return %0 : tensor<2xf32>{after}\n}}\n")


@pytest.mark.parametrize("text,failure", [
    (_BAD_ADD.format(same=" // expected-error {{broadcast-compatible}}", after=""), None),
    (_BAD_ADD.format(same="", after=" // expected-error@-1 {{broadcast-compatible}}"), None),
    (_BAD_ADD.format(same="", after=" // expected-error {{broadcast-compatible}}"),
     "reported on line 2, expected on line 3"),
    (_BAD_ADD.format(same=" // expected-error {{result shape}}", after=""),
     "expected 'result shape', got 'nn.add expects broadcast-compatible"),
    (_BAD_ADD.format(same=" // expected-error broadcast", after=""), "expected 'expected-error"),
    (_BAD_ADD.format(same=" // expected-warning {{x}}", after=""), "only 'expected-error'"),
    (_BAD_ADD.format(same="", after=""), "exactly one error (found 0)"),
    ("func.func @ok() {\n  func.return // expected-error {{anything}}\n}\n", "the IR verified"),
    ("%0 = nn.relu : // expected-error {{operand}}\n", None),  # a parse error, located
])
def test_diagnostics_harness(text, failure):
    """The expected-error checker itself: it accepts the right error and rejects the rest."""
    case = Case(text, 1, 0)
    if failure is None:
        check_diagnostics(Path("t.mlir"), case)
        return
    with pytest.raises((AssertionError, pytest.fail.Exception)) as info:
        check_diagnostics(Path("t.mlir"), case)
    assert failure in str(info.value)


def test_ops_file_covers_every_nn_op():
    from irflow.dialects.nn import NN

    files = [p for p in (ROOT / "dialects/nn").glob("*.mlir") if "invalid" not in p.name]
    used = {op.name for p in files for c in split_cases(p.read_text())
            for op in parse_mlir(c.text).walk()}
    missing = sorted(op.name for op in NN.operations if op.name not in used)
    assert not missing, f"dialects/nn/ops.mlir (or families.mlir) lacks {missing}"


def test_pass_files_name_registered_pipelines():
    """A file under passes/ runs a real pipeline: its name (or PIPELINE line) must parse."""
    from irflow.pipeline import parse_pipeline

    for path in FILES:
        if path.relative_to(ROOT).parts[0] != "passes":
            continue
        cases = split_cases(path.read_text())
        for case in cases:
            try:
                parse_pipeline(_pipeline(path, case, cases))
            except PassError as e:
                pytest.fail(f"{path}:{case.first_line}: {e}")


# Verifier messages that text cannot trigger: operands are checked to be tensors by IRDL
# before any shape function runs (the case @not_a_tensor shows that error instead).
_UNREACHABLE_FROM_TEXT = {"expected a ranked tensor, got "}


def _verifier_messages(source: str) -> list[tuple[int, str]]:
    """(line, longest literal part) of each `raise VerifyException(...)` in a dialect file."""
    import ast

    out = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                and getattr(node.exc.func, "id", None) == "VerifyException" and node.exc.args):
            continue
        parts = [c.value for c in ast.walk(node.exc.args[0])
                 if isinstance(c, ast.Constant) and isinstance(c.value, str)]
        out.append((node.lineno, max(parts, key=len)))
    return out


def test_every_nn_verifier_branch_has_an_invalid_case():
    """Each `raise VerifyException` in the dialects/nn package is exercised by invalid.mlir."""
    import irflow.dialects.nn as nn_module

    expected = " ".join(
        e.message
        for path in sorted((ROOT / "dialects/nn").glob("invalid*.mlir"))
        for c in split_cases(path.read_text())
        for e in _expectations(path, c)
    )
    branches = [
        (f"{source.name}:{line}", text)
        for source in sorted(Path(nn_module.__file__).parent.glob("*.py"))
        for line, text in _verifier_messages(source.read_text())
    ]
    assert len(branches) >= 40, f"found only {len(branches)} verifier branches"
    missing = [
        f"{where}: '{text}'"
        for where, text in branches
        if text not in _UNREACHABLE_FROM_TEXT and text.strip() not in expected
    ]
    assert not missing, "no invalid.mlir case for: " + "; ".join(missing)

