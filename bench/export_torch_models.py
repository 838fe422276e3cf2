"""Export the small PyTorch models of issue 11 to ONNX, with their outputs, into
tests/data/ (what tests/test_torch_models.py imports and checks).

    .venv/bin/python bench/export_torch_models.py            # writes tests/data/torch_*
    .venv/bin/python bench/export_torch_models.py --out DIR --only torch_resnet

The models, each exported from torch 2.13.0 with
`torch.onnx.export(model, args, f, opset_version=17)` — the default (dynamo) exporter (it
stays at opset 18 where onnx's version converter cannot go down) and the TorchScript one
(`dynamo=False`, files `*_ts.onnx`) — and the last four also by the dynamo exporter at its
default opset (20, files `*_default.onnx`):

* `torch_transformer` — an `nn.TransformerEncoderLayer(16, 2, 32)` classifier (mean over
  the sequence, then a linear head) on a (1, 8, 16) input;
* `torch_unet` — a small U-Net: conv, max pool, conv, then a ConvTranspose branch and an
  `nn.Upsample` (nearest) branch concatenated with the skip, a 1×1 conv and a sigmoid;
* `torch_where_pad_amax` — `torch.where`, `F.pad` (constant) and `amax`;
* `torch_resnet` — a ResNet: conv/BN/ReLU/max-pool stem, a basic block and a strided one
  with a 1×1 conv + BN downsample, global average pool, linear; (1, 3, 32, 32);
* `torch_mobilenet` — a MobileNetV2: strided stem, inverted residual blocks (expand,
  depthwise, project; ReLU6), 1×1 conv, mean, linear; (1, 3, 32, 32);
* `torch_vit_block` — a ViT: 4×4 patch-embedding conv, class token and position embedding,
  one pre-norm encoder block (`F.scaled_dot_product_attention`, GELU MLP), head on the class
  token; (1, 3, 16, 16);
* `torch_bert_block` — BERT embeddings (word, position, token type, LayerNorm) and one
  encoder layer with the additive padding mask; `input_ids` and `attention_mask` (1, 8).

BatchNorm running statistics are drawn at random, so folding them matters.
`NAME.ref.npz` holds the fixed inputs under their graph input names
(`torch.manual_seed(0)`) and torch's `output`. torch is
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


def _models() -> dict[str, tuple[object, dict[str, object]]]:
    """name -> (eval-mode module, {input name: fixed input}); runs inside the torch venv."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own spelling
    from torch import nn

    torch.manual_seed(0)

    def bn(c: int) -> nn.BatchNorm2d:
        b = nn.BatchNorm2d(c)  # non-trivial running statistics, so folding them matters
        with torch.no_grad():
            b.running_mean.uniform_(-0.2, 0.2)
            b.running_var.uniform_(0.5, 1.5)
            b.weight.uniform_(0.5, 1.5)
            b.bias.uniform_(-0.2, 0.2)
        return b

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

    class BasicBlock(nn.Module):  # torchvision's ResNet basic block
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = bn(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = bn(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(y)) + self.down(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            self.layers = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
            self.fc = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1)
            return self.fc(torch.flatten(y, 1))

    class InvertedResidual(nn.Module):  # MobileNetV2's block
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            self.residual = stride == 1 and cin == cout
            self.body = nn.Sequential(
                nn.Conv2d(cin, hidden, 1, bias=False), bn(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), bn(hidden),
                nn.ReLU6(),
                nn.Conv2d(hidden, cout, 1, bias=False), bn(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x) if self.residual else self.body(x)

    class MobileNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, 2, 1, bias=False), bn(8), nn.ReLU6(),
                InvertedResidual(8, 8, 1, 4), InvertedResidual(8, 16, 2, 4),
                InvertedResidual(16, 16, 1, 4),
                nn.Conv2d(16, 32, 1, bias=False), bn(32), nn.ReLU6())
            self.classifier = nn.Linear(32, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x).mean(dim=(2, 3)))

    class ViTBlock(nn.Module):  # patch embedding, class token, one pre-norm encoder block
        def __init__(self, dim: int = 32, heads: int = 4) -> None:
            super().__init__()
            self.heads = heads
            self.patch = nn.Conv2d(3, dim, 4, 4)
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
            self.norm1, self.norm2, self.norm = (nn.LayerNorm(dim), nn.LayerNorm(dim),
                                                 nn.LayerNorm(dim))
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            self.head = nn.Linear(dim, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            b, n, c = x.shape
            qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v)
            x = x + self.proj(a.transpose(1, 2).reshape(b, n, c))
            x = x + self.mlp(self.norm2(x))
            return self.head(self.norm(x)[:, 0])

    class BertBlock(nn.Module):  # BERT embeddings and one encoder layer, with a padding mask
        def __init__(self, vocab: int = 64, dim: int = 32, heads: int = 4, seq: int = 8
                     ) -> None:
            super().__init__()
            self.heads = heads
            self.word = nn.Embedding(vocab, dim)
            self.position = nn.Embedding(seq, dim)
            self.token_type = nn.Embedding(2, dim)
            self.emb_norm = nn.LayerNorm(dim, eps=1e-12)
            self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.attn_out = nn.Linear(dim, dim)
            self.attn_norm = nn.LayerNorm(dim, eps=1e-12)
            self.inter = nn.Linear(dim, 2 * dim)
            self.out = nn.Linear(2 * dim, dim)
            self.out_norm = nn.LayerNorm(dim, eps=1e-12)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            b, s = input_ids.shape
            pos = torch.arange(s).unsqueeze(0)
            x = self.word(input_ids) + self.position(pos) + self.token_type(
                torch.zeros_like(input_ids))
            x = self.emb_norm(x)
            d = x.shape[-1] // self.heads

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, s, self.heads, d).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            scores = q @ k.transpose(-1, -2) / d ** 0.5 + bias
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, -1)
            x = self.attn_norm(x + self.attn_out(ctx))
            return self.out_norm(x + self.out(F.gelu(self.inter(x))))

    ids = torch.randint(0, 64, (1, 8))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0]])
    return {
        "torch_transformer": (Classifier(), {"input": torch.randn(1, 8, 16)}),
        "torch_unet": (UNet(), {"input": torch.randn(1, 1, 16, 16)}),
        "torch_where_pad_amax": (WherePadAmax(), {"input": torch.randn(2, 4, 8)}),
        "torch_resnet": (ResNet(), {"input": torch.randn(1, 3, 32, 32)}),
        "torch_mobilenet": (MobileNet(), {"input": torch.randn(1, 3, 32, 32)}),
        "torch_vit_block": (ViTBlock(), {"input": torch.randn(1, 3, 16, 16)}),
        "torch_bert_block": (BertBlock(), {"input_ids": ids, "attention_mask": mask}),
    }


def _inner(out: Path, only: list[str]) -> None:
    """Runs inside the torch venv: build, export, strip, save outputs."""
    import numpy as np
    import onnx
    import torch

    for name, (model, inputs) in _models().items():
        if only and name not in only:
            continue
        model.eval()  # type: ignore[attr-defined]
        args = tuple(inputs.values())
        with torch.no_grad():
            y = model(*args)  # type: ignore[operator]
        # (suffix, dynamo, opset); None: the dynamo exporter's default opset (20)
        for suffix, dynamo, opset in (("", True, 17), ("_ts", False, 17), ("_default", True, None)):
            if suffix == "_default" and name in LEGACY:
                continue
            path = out / f"{name}{suffix}.onnx"
            kwargs = {"external_data": False} if dynamo else {}
            torch.onnx.export(model, args, str(path), opset_version=opset, dynamo=dynamo,
                              input_names=list(inputs), output_names=["output"], **kwargs)
            proto = onnx.load(str(path))
            proto.doc_string = ""
            del proto.metadata_props[:]
            for node in proto.graph.node:
                node.doc_string = ""
                del node.metadata_props[:]
            onnx.save(proto, str(path))
            np.savez(out / f"{name}{suffix}.ref.npz", output=y.numpy(),
                     **{k: v.numpy() for k, v in inputs.items()})
            print(f"{path.name}: opset {proto.opset_import[0].version}, "
                  f"{len(proto.graph.node)} nodes, {path.stat().st_size} bytes, "
                  f"output {tuple(y.shape)}")


# The first three models predate the dynamo-default-opset files.
LEGACY = ("torch_transformer", "torch_unet", "torch_where_pad_amax")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / "tests" / "data")
    ap.add_argument("--only", nargs="*", default=[], help="model names (default: all)")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.inner:
        _inner(args.out, args.only)
        return 0
    with tempfile.TemporaryDirectory(prefix="irflow-torch-") as tmp:
        env = Path(tmp) / "venv"
        venv.create(env, with_pip=True, clear=True)
        py = env / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PACKAGES], check=True)
        return subprocess.run([str(py), __file__, "--inner", "--out", str(args.out.resolve()),
                               "--only", *args.only], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
