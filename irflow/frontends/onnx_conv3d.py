"""ONNX Conv with a rank-5 (N, C, D, H, W) input, written with `nn` ops: one 2-D
convolution over the depth taps stacked as channels (depth im2col).

For output depth `od` the 3-D convolution is the sum over depth taps `t` of the 2-D
convolution of the input depth plane `od·sd − pad_d + t·dd` with the weight's plane `t`.
Stacking the KD planes each output depth reads as input channels (the strided `nn.slice`
of each tap, concatenated) and moving the output depth into the batch makes that sum one
`nn.conv2d` with KD·C/G channels per group:

    x (N, C, D, H, W) ─pad depth─ slice tap t (stride sd) ─concat taps─ (N, KD·C, OD, H, W)
      ─reshape/transpose─ (N·OD, G·KD·C/G, H, W) ─conv2d(w as (F, KD·C/G, KH, KW))─
      (N·OD, F, OH, OW) ─reshape/transpose─ (N, F, OD, OH, OW)

so it runs on the reference executor and on the simulator's PE array as a 2-D conv whose
rows hold c·kd·kh·kw (the copies that stack the taps are DMA layers: KD× the input).
"""

from __future__ import annotations

from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.frontends.onnx import _Importer
from irflow.frontends.onnx_spatial import window_pads


def conv3d(im: _Importer, x: SSAValue, w: SSAValue, b: SSAValue | None) -> list[SSAValue]:
    n, c, depth, h, wd = nn.shape_of(x)
    f, cg, kd, kh, kw = nn.shape_of(w)
    strides = im.ints("strides", [1, 1, 1])
    dil = im.ints("dilations", [1, 1, 1])
    groups = int(im.attr("group", 1))
    if len(strides) != 3 or len(dil) != 3:
        raise im.error(f"expects 3 strides and dilations for a 3-D Conv, got {strides} "
                       f"and {dil}")
    pads = window_pads(im, (depth, h, wd), (kd, kh, kw), strides, dil)
    od = nn.window_out(depth, kd, strides[0], pads[0], pads[3], dil[0])
    if pads[0] or pads[3]:
        x = im.make(ix.PadOp, [x], pads=nn.int_array([0, 0, pads[0], 0, 0,
                                                       0, 0, pads[3], 0, 0]))
    taps = [im.make(nn.SliceOp, [x], starts=nn.int_array([t * dil[0]]),
                    ends=nn.int_array([t * dil[0] + (od - 1) * strides[0] + 1]),
                    axes=nn.int_array([2]), steps=nn.int_array([strides[0]]))
            for t in range(kd)]
    stacked = taps[0] if kd == 1 else im.make(nn.ConcatOp, taps, axis=nn.i64_attr(1))
    planes = im.emit1(nn.ReshapeOp(stacked, (n, kd, groups, cg, od, h, wd)))
    planes = im.make(nn.TransposeOp, [planes], perm=nn.int_array([0, 4, 2, 1, 3, 5, 6]))
    planes = im.emit1(nn.ReshapeOp(planes, (n * od, groups * kd * cg, h, wd)))
    wt = im.make(nn.TransposeOp, [w], perm=nn.int_array([0, 2, 1, 3, 4]))
    wt = im.emit1(nn.ReshapeOp(wt, (f, kd * cg, kh, kw)))
    y = im.emit1(nn.Conv2dOp(planes, wt, b, strides=strides[1:],
                             pads=[pads[1], pads[2], pads[4], pads[5]], dilations=dil[1:],
                             groups=groups))
    _, _, oh, ow = nn.shape_of(y)
    y = im.emit1(nn.ReshapeOp(y, (n, od, f, oh, ow)))
    return [im.make(nn.TransposeOp, [y], perm=nn.int_array([0, 2, 1, 3, 4]))]
