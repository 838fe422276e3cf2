"""Export the three small PyTorch models of issue 11 to ONNX, with their outputs, into
tests/data/ (what tests/test_torch_models.py imports and checks).

    .venv/bin/python bench/export_torch_models.py            # writes tests/data/torch_*
    .venv/bin/python bench/export_torch_models.py --out DIR

The models, each exported twice from torch 2.13.0 with
`torch.onnx.export(model, (x,), f, opset_version=17)` — the default (dynamo) exporter and
the TorchScript one (`dynamo=False`, files `*_ts.onnx`):

* `torch_transformer` — an `nn.TransformerEncoderLayer(16, 2, 32)` classifier (mean over
  the sequence, then a linear head) on a (1, 8, 16) input;
* `torch_unet` — a small U-Net: conv, max pool, conv, then a ConvTranspose branch and an
  `nn.Upsample` (nearest) branch concatenated with the skip, a 1×1 conv and a sigmoid;
* `torch_where_pad_amax` — `torch.where`, `F.pad` (constant) and `amax`.

`NAME.ref.npz` holds the fixed input (`torch.manual_seed(0)`) and torch's output. torch is
not an irflow dependency: this script makes its own virtual environment in a temporary
folder (`pip install torch==2.13.0 onnx==1.23.2 onnxscript==0.7.2`, about a minute from
the pip cache), runs itself there with `--inner`, and deletes it. The exported files have
their node metadata and doc strings (source file paths of the machine that exported)
stripped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["torch==2.13.0", "onnx==1.23.2", "onnxscript==0.7.2", "numpy==2.4.6"]


def _inner(out: Path) -> None:
    """Runs inside the torch venv: build, export, strip, save outputs."""
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own spelling
    from torch import nn

    torch.manual_seed(0)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(x).mean(dim=1))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
            self.pool = nn.MaxPool2d(2)
            self.mid = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
            self.up_t = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.up_s = nn.Upsample(scale_factor=2, mode="nearest")
            self.out = nn.Conv2d(4 + 4 + 8, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = self.down(x)
            m = self.mid(self.pool(d))
            u = torch.cat([d, self.up_t(m), self.up_s(m)], dim=1)
            return torch.sigmoid(self.out(u))

    class WherePadAmax(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.where(x > 0, x, 0.1 * x)
            y = F.pad(y, (1, 2), value=-1.0)
            return y - y.amax(dim=-1, keepdim=True)

    models = {
        "torch_transformer": (Classifier(), (1, 8, 16)),
        "torch_unet": (UNet(), (1, 1, 16, 16)),
        "torch_where_pad_amax": (WherePadAmax(), (2, 4, 8)),
    }
    for name, (model, shape) in models.items():
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        for suffix, dynamo in (("", True), ("_ts", False)):
            path = out / f"{name}{suffix}.onnx"
            kwargs = {"external_data": False} if dynamo else {}
            torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=dynamo,
                              input_names=["input"], output_names=["output"], **kwargs)
            proto = onnx.load(str(path))
            proto.doc_string = ""
            del proto.metadata_props[:]
            for node in proto.graph.node:
                node.doc_string = ""
                del node.metadata_props[:]
            onnx.save(proto, str(path))
            np.savez(out / f"{name}{suffix}.ref.npz", input=x.numpy(), output=y.numpy())
            print(f"{path.name}: opset {proto.opset_import[0].version}, "
                  f"{len(proto.graph.node)} nodes, output {tuple(y.shape)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / "tests" / "data")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.inner:
        _inner(args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="irflow-torch-") as tmp:
        env = Path(tmp) / "venv"
        venv.create(env, with_pip=True, clear=True)
        py = env / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PACKAGES], check=True)
        return subprocess.run([str(py), __file__, "--inner", "--out", str(args.out.resolve())],
                              check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
