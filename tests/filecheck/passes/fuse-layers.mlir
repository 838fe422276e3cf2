// PIPELINE: fuse-layers{objective=always band=2}
// fuse-layers: an inverted residual (expand 1×1 → depthwise 3×3 → project 1×1) becomes
// one accel.fused group run 2 output rows at a time. The intermediates' `at` become
// their ring buffers' offsets in the on-chip scratch (4 rows of the expand output: the
// depthwise window of a 2-row band; 2 rows of the depthwise output), the last layer
// keeps a DRAM address, and the activations are placed again without the
// intermediates (peak 8192 -> 2048 bytes).

// CHECK-LABEL: func.func @main
// CHECK-SAME:    accel.peak_bytes = 2048 : i64
// CHECK:         %[[X:.*]] = accel.input %x at 1088
// CHECK:         %[[Y:.*]] = accel.fused "conv2d_0" band "oh" = 2 overlap "cache"(%[[X]], %w1, %w2, %w3)
// CHECK-NEXT:    ^bb0(%[[A:.*]]: tensor<1x4x8x8xf32>, %[[B:.*]]: tensor<16x4x1x1xf32>, %[[C:.*]]: tensor<16x1x3x3xf32>, %[[D:.*]]: tensor<4x16x1x1xf32>):
// CHECK-NEXT:      %[[E:.*]] = accel.layer "conv2d_0" "nn.conv2d"(%[[A]], %[[B]]) at 0 on "pe"
// CHECK-NEXT:      %[[F:.*]] = accel.layer "conv2d_1" "nn.conv2d"(%[[E]], %[[C]]) at 2048 on "pe"
// CHECK-NEXT:      %[[G:.*]] = accel.layer "conv2d_2" "nn.conv2d"(%[[F]], %[[D]]) at 2112 on "pe"
// CHECK-NEXT:      accel.yield %[[G]] : tensor<1x4x8x8xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[Y]]
func.func @main(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> attributes {accel.weight_bytes = 1088 : i64, accel.activation_base = 1088 : i64, accel.peak_bytes = 8192 : i64} {
  %x_1 = accel.input %x at 5184 : tensor<1x4x8x8xf32>
  %w1 = accel.weight dense<5.000000e-01> : tensor<16x4x1x1xf32> at 0 : tensor<16x4x1x1xf32>
  %w2 = accel.weight dense<2.500000e-01> : tensor<16x1x3x3xf32> at 256 : tensor<16x1x3x3xf32>
  %w3 = accel.weight dense<1.250000e-01> : tensor<4x16x1x1xf32> at 832 : tensor<4x16x1x1xf32>
  %a6 = accel.layer "conv2d_0" "nn.conv2d"(%x_1, %w1) at 1088 on "pe" tiles <g = 1, f = 16, c = 4, n = 1, oh = 8 step 4, ow = 8> params {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, act = "relu6"} : (tensor<1x4x8x8xf32>, tensor<16x4x1x1xf32>) -> tensor<1x16x8x8xf32>
  %b6 = accel.layer "conv2d_1" "nn.conv2d"(%a6, %w2) at 5184 on "pe" tiles <g = 16, f = 1, c = 1, n = 1, oh = 8 step 4, ow = 8> params {pads = array<i64: 1, 1, 1, 1>, groups = 16 : i64, strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, act = "relu6"} : (tensor<1x16x8x8xf32>, tensor<16x1x3x3xf32>) -> tensor<1x16x8x8xf32>
  %y = accel.layer "conv2d_2" "nn.conv2d"(%b6, %w3) at 1088 on "pe" tiles <g = 1, f = 4, c = 16, n = 1, oh = 8 step 4, ow = 8> params {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x8x8xf32>, tensor<4x16x1x1xf32>) -> tensor<1x4x8x8xf32>
  func.return %y : tensor<1x4x8x8xf32>
}
