// The accel dialect's ops in their custom format: placed inputs and weights, views, and
// tiled layers on each unit. Printing then parsing gives the same text (checked by the
// golden runner for every case).

// CHECK-LABEL: func.func @conv_block
// CHECK-NEXT:    %[[X:.*]] = accel.input %arg0 at 4096 : tensor<1x8x10x10xf32>
// CHECK-NEXT:    %[[W:.*]] = accel.weight #nn.weight<"conv.weight"> at 0 : tensor<16x8x3x3xf32>
// CHECK-NEXT:    %[[B:.*]] = accel.weight dense<1.000000e+00> : tensor<16xf32> at 4608 : tensor<16xf32>
// CHECK-NEXT:    %[[Y:.*]] = accel.layer "conv1" "nn.conv2d"(%[[X]], %[[W]], %[[B]]) at 7296 on "pe" tiles <n = 1, g = 1, f = 16 step 8, oh = 10 step 3, ow = 10, c = 8 step 5> params {pads = array<i64: 1, 1, 1, 1>, act = "relu"}
// CHECK-NEXT:    %[[R:.*]] = accel.layer "pool" "nn.maxpool"(%[[Y]]) at 4096 on "vector" tiles <c = 16, n = 1, oh = 5 step 2, ow = 5> params {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>}
// CHECK-NEXT:    %[[V:.*]] = accel.view %[[R]] : (tensor<1x16x5x5xf32>) -> tensor<1x400xf32>
// CHECK-NEXT:    func.return %[[V]]
func.func @conv_block(%arg0: tensor<1x8x10x10xf32>) -> tensor<1x400xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x8x10x10xf32>
  %w = accel.weight #nn.weight<"conv.weight"> at 0 : tensor<16x8x3x3xf32>
  %b = accel.weight dense<1.0> : tensor<16xf32> at 4608 : tensor<16xf32>
  %y = accel.layer "conv1" "nn.conv2d"(%x, %w, %b) at 7296 on "pe" tiles <n = 1, g = 1, f = 16 step 8, oh = 10 step 3, ow = 10, c = 8 step 5> params {pads = array<i64: 1, 1, 1, 1>, act = "relu"} : (tensor<1x8x10x10xf32>, tensor<16x8x3x3xf32>, tensor<16xf32>) -> tensor<1x16x10x10xf32>
  %p = accel.layer "pool" "nn.maxpool"(%y) at 4096 on "vector" tiles <c = 16, n = 1, oh = 5 step 2, ow = 5> params {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x16x10x10xf32>) -> tensor<1x16x5x5xf32>
  %v = accel.view %p : (tensor<1x16x5x5xf32>) -> tensor<1x400xf32>
  func.return %v : tensor<1x400xf32>
}

// -----

// Copies run on the DMA unit; gather has data-dependent addresses and an empty (one-step) nest.
// CHECK-LABEL: func.func @copies
// CHECK:         accel.layer "t" "nn.transpose"(%{{.*}}) at 1024 on "dma" tiles <d0 = 3, d1 = 4 step 3> params {perm = array<i64: 1, 0>}
// CHECK:         accel.layer "g" "nn.gather"(%{{.*}}, %{{.*}}) at 2048 on "dma" tiles <> params {axis = 0 : i64}
func.func @copies(%arg0: tensor<4x3xf32>, %arg1: tensor<2xi64>) -> (tensor<3x4xf32>, tensor<2x3xf32>) {
  %x = accel.input %arg0 at 0 : tensor<4x3xf32>
  %i = accel.input %arg1 at 512 : tensor<2xi64>
  %t = accel.layer "t" "nn.transpose"(%x) at 1024 on "dma" tiles <d0 = 3, d1 = 4 step 3> params {perm = array<i64: 1, 0>} : (tensor<4x3xf32>) -> tensor<3x4xf32>
  %g = accel.layer "g" "nn.gather"(%x, %i) at 2048 on "dma" tiles <> params {axis = 0 : i64} : (tensor<4x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  func.return %t, %g : tensor<3x4xf32>, tensor<2x3xf32>
}

// -----

// A fused group (`fuse-layers`, dialects/accel_fused.py): a 1×1 conv and a 3×3 conv run
// depth-first, 2 output rows per band; the intermediate's `at` is its ring buffer's offset.
// CHECK-LABEL: func.func @fused
// CHECK:         %[[Y:.*]] = accel.fused "g" band "oh" = 2 overlap "cache"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: tensor<1x4x8x8xf32>, %[[B:.*]]: tensor<8x4x1x1xf32>, %[[C:.*]]: tensor<4x8x3x3xf32>):
// CHECK-NEXT:      %[[E:.*]] = accel.layer "e" "nn.conv2d"(%[[A]], %[[B]]) at 0 on "pe"
// CHECK-NEXT:      %[[P:.*]] = accel.layer "p" "nn.conv2d"(%[[E]], %[[C]]) at 8192 on "pe"
// CHECK-NEXT:      accel.yield %[[P]] : tensor<1x4x8x8xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[Y]]
func.func @fused(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}
