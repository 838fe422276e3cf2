"""Run one fuzz case through the `irflow` command line, in process, and classify it.

A case is a set of files (written into a fresh folder) and the argv of an `irflow`
command that names them as `{dir}/...`. `run_case` calls `irflow.cli.main` exactly as the
console script does, with `--debug` so that an exception keeps its traceback, and sorts
the outcome the way `main` does without `--debug`:

- ``ok``        exit 0;
- ``error``     an `IrflowError` (or `OSError`/`MemoryError`): one line, exit 1 — fine;
- ``usage``     argparse rejected the command line (exit 2) — fine;
- ``timeout``   the case ran longer than `timeout` seconds (reported apart, not a crash);
- ``internal``  any other exception: what `main` turns into exit 70, an irflow bug.

Internal errors are deduplicated by exception type and the innermost stack frame inside
irflow (`Outcome.key`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from irflow.diagnostics import IrflowError

REPO = Path(__file__).resolve().parent.parent
# What `irflow.cli.main` reports as exit 1 (a user's error); anything else is exit 70.
USER_ERRORS: tuple[type[BaseException], ...] = (IrflowError, OSError, MemoryError)


@dataclass
class Case:
    """Files to write (name -> bytes) and the command line that reads them."""

    files: dict[str, bytes]
    argv: list[str]


@dataclass
class Outcome:
    kind: str  # ok | error | usage | timeout | internal
    key: str = ""  # for internal errors and timeouts: "Type at file:line"
    detail: str = ""  # the message (internal: the traceback's last lines)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class CaseTimeout(BaseException):
    """Raised by the alarm when a case runs too long (a BaseException, so `except
    Exception` in irflow cannot swallow it)."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise CaseTimeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _where(tb: traceback.StackSummary) -> str:
    """The innermost frame in irflow's own code (else the innermost frame)."""
    for frame in reversed(tb):
        path = Path(frame.filename)
        if not path.is_absolute():  # e.g. numpy's "numpy/random/_common.pyx"
            continue
        try:
            rel = path.resolve().relative_to(REPO)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] not in ("fuzz", "tests", ".venv"):
            return f"{rel}:{frame.lineno}"
    frame = tb[-1] if tb else None
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


def materialize(case: Case, folder: Path) -> list[str]:
    """Write `case.files` into `folder` (emptied first); the argv with `{dir}` (that
    folder) and `{repo}` (the repository) filled in."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    return [a.replace("{dir}", str(folder)).replace("{repo}", str(REPO)) for a in case.argv]


def run_case(case: Case, folder: Path, *, timeout: float = 20.0) -> Outcome:
    """Run `case` in `folder` through `irflow.cli.main` and classify the result."""
    import time

    from irflow.cli import main

    argv = materialize(case, folder)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    try:
        with (warnings.catch_warnings(), contextlib.redirect_stdout(out),
              contextlib.redirect_stderr(err), _alarm(timeout)):
            warnings.simplefilter("ignore")
            rc = main(["--debug", *argv])
        return Outcome("ok" if rc == 0 else "error", detail=f"exit {rc}",
                       seconds=time.perf_counter() - start)
    except SystemExit as e:
        return Outcome("usage", detail=f"exit {e.code}", seconds=time.perf_counter() - start)
    except CaseTimeout as e:
        tb = traceback.extract_tb(e.__traceback__)
        return Outcome("timeout", key=f"timeout at {_where(tb)}", detail=f"> {timeout} s",
                       seconds=time.perf_counter() - start)
    except USER_ERRORS as e:
        return Outcome("error", detail=str(e)[:300], seconds=time.perf_counter() - start)
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as e:  # noqa: BLE001 - this is what the fuzzer looks for
        tb = traceback.extract_tb(e.__traceback__)
        text = "".join(traceback.format_exception(e)[-6:])
        return Outcome("internal", key=f"{type(e).__name__} at {_where(tb)}",
                       detail=f"{type(e).__name__}: {str(e)[:300]}\n{text}",
                       seconds=time.perf_counter() - start)


def case_to_json(case: Case) -> dict:
    """A JSON-able form (text files as text, binary ones as hex)."""
    files: dict[str, Mapping[str, str]] = {}
    for name, data in case.files.items():
        try:
            files[name] = {"text": data.decode()}
        except UnicodeDecodeError:
            files[name] = {"hex": data.hex()}
    return {"argv": case.argv, "files": files}


def case_from_json(d: Mapping) -> Case:
    files = {name: (v["text"].encode() if "text" in v else bytes.fromhex(v["hex"]))
             for name, v in d["files"].items()}
    return Case(files, list(d["argv"]))


def shrink(case: Case, folder: Path, key: str, *, budget: int = 1000,
           timeout: float = 20.0) -> Case:
    """Greedy delta debugging of `case`: drop lines, then character spans, of its text
    files, and nodes/initializers of its ONNX models, while it still fails with the same
    `key`; at most `budget` runs."""
    runs = 0

    def same(c: Case) -> bool:
        nonlocal runs
        runs += 1
        o = run_case(c, folder, timeout=timeout)
        return o.kind == "internal" and o.key == key

    for name, data in list(case.files.items()):
        if name.endswith(".onnx"):
            case = _shrink_onnx(case, name, same, lambda: runs < budget)
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        for unit in ("\n", ""):
            parts: Sequence[str] = text.split("\n") if unit else list(text)
            chunk = max(1, len(parts) // 2)
            while chunk >= 1 and runs < budget:
                i, changed = 0, False
                while i < len(parts) and runs < budget:
                    trial = [*parts[:i], *parts[i + chunk:]]
                    files = {**case.files, name: unit.join(trial).encode()}
                    if trial and same(Case(files, case.argv)):
                        parts, changed = trial, True
                    else:
                        i += chunk
                if not changed:
                    chunk //= 2
            text = unit.join(parts)
            case = Case({**case.files, name: text.encode()}, case.argv)
    return case


def _shrink_onnx(case: Case, name: str, same: Callable[[Case], bool],
                 more: Callable[[], bool]) -> Case:
    """Drop nodes, initializers, outputs and value infos of an ONNX model one at a time
    while the case keeps failing the same way."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(case.files[name])
    except Exception:  # noqa: BLE001 - a corrupt protobuf stays as it is
        return case
    g = model.graph
    for field_name in ("node", "initializer", "output", "value_info", "input"):
        items = getattr(g, field_name)
        i = len(items) - 1
        while i >= 0 and more():
            trial = onnx.ModelProto()
            trial.CopyFrom(model)
            del getattr(trial.graph, field_name)[i]
            c = Case({**case.files, name: trial.SerializeToString()}, case.argv)
            if same(c):
                model, case = trial, c
                g = model.graph
            i -= 1
    return case


def environment_for_fuzzing(limit: str = "64M") -> None:
    """Cap what one case may allocate (irflow's allocation guard, docs/fuzzing.md) and
    the process's address space, so a fuzzed shape cannot take the machine's memory."""
    import resource

    os.environ.setdefault("IRFLOW_ALLOC_LIMIT", limit)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = 8 << 30
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
