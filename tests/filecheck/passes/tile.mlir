// tile: every layer op gets its symbolic loop nest (`accel.nest`, outermost loop first);
// constants and views get none. The default rule keeps one double-buffered step within
// the default machine's 256 KiB cache.

// CHECK-LABEL: func.func @conv_relu
// CHECK-NEXT:    nn.conv2d %x, %w {accel.nest = #accel.nest<n = 1, g = 1, f = 64 step 32, oh = 56 step 14, ow = 56, c = 64 step 4>, pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT:    nn.relu %{{.*}} {accel.nest = #accel.nest<d0 = 1, d1 = 64, d2 = 56 step 4, d3 = 56>}
func.func @conv_relu(%x: tensor<1x64x56x56xf32>, %w: tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32> {
  %y = nn.conv2d %x, %w {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32>
  %z = nn.relu %y : tensor<1x64x56x56xf32>
  func.return %z : tensor<1x64x56x56xf32>
}

// -----

// Options: sizes for every op that has the loop, the order's named loops first; a small
// layer stays whole; constants and reshapes are not layers.
// PIPELINE: tile{sizes="f=32,d0=3" order="oh,f"}
// CHECK-LABEL: func.func @options
// CHECK-NEXT:    nn.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-NEXT:    nn.conv2d %x, %w {accel.nest = #accel.nest<oh = 8, f = 64 step 32, n = 1, g = 1, ow = 8, c = 64>}
// CHECK-NEXT:    nn.add %{{.*}}, %{{.*}} {accel.nest = #accel.nest<d0 = 4 step 3, d1 = 16>}
// CHECK-NEXT:    nn.reshape %{{.*}} : (tensor<4x16xf32>) -> tensor<64xf32>
func.func @options(%x: tensor<1x64x8x8xf32>, %w: tensor<64x64x1x1xf32>, %a: tensor<4x16xf32>) -> (tensor<1x64x8x8xf32>, tensor<64xf32>) {
  %c = nn.constant dense<1.000000e+00> : tensor<16xf32>
  %y = nn.conv2d %x, %w : (tensor<1x64x8x8xf32>, tensor<64x64x1x1xf32>) -> tensor<1x64x8x8xf32>
  %b = nn.add %a, %c : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %d = nn.reshape %b : (tensor<4x16xf32>) -> tensor<64xf32>
  func.return %y, %d : tensor<1x64x8x8xf32>, tensor<64xf32>
}

// -----

// A softmax row of 80 KB cannot fit a 64 KiB cache even as the smallest tile: it is
// tiled anyway (one row per step) and warned about.
// PIPELINE: tile{cache_bytes=65536}
// CHECK-LABEL: func.func @too_big
// CHECK-NEXT:    nn.softmax %x {accel.nest = #accel.nest<d0 = 2 step 1>, accel.warning = "smallest tile needs 320000 bytes double-buffered, the cache holds 65536: this layer streams from DRAM"
func.func @too_big(%x: tensor<2x20000xf32>) -> tensor<2x20000xf32> {
  %y = nn.softmax %x {axis = 1 : i64} : tensor<2x20000xf32>
  func.return %y : tensor<2x20000xf32>
}
