// lower-to-accel: nn ops become placed accel ops. Without a prior `plan-memory`/`tile`,
// the pass plans memory (weights from address 0, activations after them, 64-byte
// aligned) and tiles with the default rule itself.

// CHECK-LABEL: func.func @mlp
// CHECK-SAME:    accel.weight_bytes = 128 : i64, accel.activation_base = 128 : i64, accel.peak_bytes = 128 : i64
// CHECK-NEXT:    %[[X:.*]] = accel.input %x at 128 : tensor<2x8xf32>
// CHECK-NEXT:    %[[W:.*]] = accel.weight dense<5.000000e-01> : tensor<4x8xf32> at 0 : tensor<4x8xf32>
// CHECK-NEXT:    %[[Y:.*]] = accel.layer "linear_0" "nn.linear"(%[[X]], %[[W]]) at 192 on "pe" tiles <b = 1, m = 2, n = 4, k = 8> params {act = "relu"}
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     nn.
func.func @mlp(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = nn.constant dense<5.000000e-01> : tensor<4x8xf32>
  %y = nn.linear %x, %w {act = "relu"} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

// flatten is a view of the same bytes; split becomes one DMA slice copy per piece, and a
// piece may reuse the dead input's space.
// CHECK-LABEL: func.func @views
// CHECK:         %[[X:.*]] = accel.input %x at 0
// CHECK-NEXT:    %[[R:.*]] = accel.layer "relu_0" "nn.relu"(%[[X]]) at 64 on "vector"
// CHECK-NEXT:    %[[F:.*]] = accel.view %[[R]] : (tensor<1x4x2x2xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %[[A:.*]] = accel.layer "split_0.0" "nn.slice"(%[[R]]) at 0 on "dma" tiles <d0 = 1, d1 = 1, d2 = 2, d3 = 2> params {starts = array<i64: 0>, ends = array<i64: 1>, axes = array<i64: 1>}
// CHECK-NEXT:    %[[B:.*]] = accel.layer "split_0.1" "nn.slice"(%[[R]]) at 128 on "dma" tiles <d0 = 1, d1 = 3, d2 = 2, d3 = 2> params {starts = array<i64: 1>, ends = array<i64: 4>, axes = array<i64: 1>}
// CHECK-NEXT:    func.return %[[F]], %[[A]], %[[B]]
func.func @views(%x: tensor<1x4x2x2xf32>) -> (tensor<1x16xf32>, tensor<1x1x2x2xf32>, tensor<1x3x2x2xf32>) {
  %r = nn.relu %x : tensor<1x4x2x2xf32>
  %f = nn.flatten %r {axis = 1 : i64} : (tensor<1x4x2x2xf32>) -> tensor<1x16xf32>
  %a, %b = nn.split %r {axis = 1 : i64, sizes = array<i64: 1, 3>} : (tensor<1x4x2x2xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x3x2x2xf32>)
  func.return %f, %a, %b : tensor<1x16xf32>, tensor<1x1x2x2xf32>, tensor<1x3x2x2xf32>
}

// -----

// The op's own `accel.tile` sizes and `accel.order` win; unnamed loops follow in
// canonical order, and a size that does not divide (10 by 3) is kept.
// CHECK-LABEL: func.func @tiled
// CHECK:         accel.layer "conv2d_0" "nn.conv2d"(%{{.*}}, %{{.*}}) at 0 on "pe" tiles <oh = 10 step 3, f = 16 step 8, n = 1, g = 1, ow = 10, c = 8>
func.func @tiled(%x: tensor<1x8x10x10xf32>, %w: tensor<16x8x3x3xf32>) -> tensor<1x16x10x10xf32> {
  %y = nn.conv2d %x, %w {pads = array<i64: 1, 1, 1, 1>, accel.tile = {f = 8 : i64, oh = 3 : i64}, accel.order = "oh,f"} : (tensor<1x8x10x10xf32>, tensor<16x8x3x3xf32>) -> tensor<1x16x10x10xf32>
  func.return %y : tensor<1x16x10x10xf32>
}
