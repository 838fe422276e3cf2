"""Writing outputs (irflow/fileio.py): atomic for regular files, in place for devices and
FIFOs, symlinks followed, the umask's mode, output folders checked before any work."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import irflow
from irflow import cli
from irflow.diagnostics import IrflowError
from irflow.fileio import check_output, write_output
from irflow.frontends.dsl import compile_source

SMALL = """model small(x: f32[1, 4]) {
  fc = linear(x, out=3)
  return fc
}
"""


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode(tmp_path: Path, umask022: None) -> None:
    write_output(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert _mode(tmp_path / "a.txt") == 0o644
    os.umask(0o027)
    write_output(tmp_path / "b.txt", b"x")
    assert _mode(tmp_path / "b.txt") == 0o640


def test_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.mlir"
    path.write_text("old")
    path.chmod(0o640)
    inode = os.stat(path).st_ino
    write_output(path, "new")
    assert path.read_text() == "new"
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert _mode(path) == 0o640

    def fail(f: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_output(path, fail)
    assert path.read_text() == "new"  # a failed write leaves the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir"]  # no temp file left


def test_symlink_stays_a_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real" / "model.mlir"
    target.parent.mkdir()
    target.write_text("")
    link = tmp_path / "link.mlir"
    link.symlink_to(target)
    write_output(link, "module {}\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "module {}\n"
    dangling = tmp_path / "dangling.mlir"
    dangling.symlink_to(tmp_path / "real" / "new.mlir")
    write_output(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "real" / "new.mlir").read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_character_device_is_written_in_place_and_gets_no_npz(tmp_path: Path) -> None:
    dev = tmp_path / "null"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device
    write_output(dev, "anything")
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    module = compile_source(SMALL)
    with pytest.raises(IrflowError, match="not a regular file.*--weights-out"):
        irflow.save(module, dev)
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no null.npz beside it
    irflow.save(module, dev, weights=tmp_path / "w.npz")  # the weights go where told
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert sorted(np.load(tmp_path / "w.npz").files) == ["fc.bias", "fc.weight"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_cli_opt_to_a_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = tmp_path / "null"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert cli.main(["opt", "digits_cnn", "-p", "default", "-o", str(dev)]) == 1
    assert "--weights-out" in capsys.readouterr().err
    assert cli.main(["opt", "digits_cnn", "-o", str(dev),
                     "--weights-out", str(tmp_path / "w.npz")]) == 0
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "w.npz"]


def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    module = compile_source(SMALL)
    irflow.save(module, tmp_path / "out" / "deeper" / "model.mlir")
    assert (tmp_path / "out" / "deeper" / "model.mlir").exists()
    assert (tmp_path / "out" / "deeper" / "model.npz").exists()


def test_output_checks_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(IrflowError, match=r"-o .*: the output folder '.*missing' does not exist"):
        check_output(tmp_path / "missing" / "x.mlir", "-o")
    with pytest.raises(IrflowError, match="is a directory"):
        check_output(tmp_path, "--trace")
    check_output(tmp_path / "x.mlir", "-o")  # a new file in an existing folder is fine


@pytest.mark.parametrize("argv", [
    ["run", "digits_cnn", "--outputs", "{missing}/o.npz"],
    ["run", "digits_cnn", "--trace", "{missing}/t.json"],
    ["run", "digits_cnn", "--report-file", "{missing}/r.json"],
    ["opt", "digits_cnn", "-o", "{missing}/m.mlir"],
    ["opt", "digits_cnn", "-p", "default", "--dump-dir", "{missing}/d"],
    ["export", "digits_cnn", "-o", "{missing}/m.onnx"],
    ["show", "digits_cnn", "-o", "{missing}/m.dot"],
])
def test_cli_checks_output_folders_before_any_work(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_work(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(cli, "load_model", no_work)
    missing = str(tmp_path / "missing")
    assert cli.main([a.replace("{missing}", missing) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and missing in err and "does not exist" in err


def test_dev_stdout_into_a_pipe(tmp_path: Path) -> None:
    """/dev/stdout is a link to /proc/self/fd/1, whose target (pipe:[N]) has no path."""
    import subprocess
    import sys

    code = ("from irflow.fileio import check_output, write_output; "
            "check_output('/dev/stdout', '-o'); write_output('/dev/stdout', 'through')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "through"
    assert list(tmp_path.iterdir()) == []  # no file named after the pipe
