// plan-memory: weights at address 0 in their own region, activations after them; a
// buffer's space is reused once its value (and every view of it) is dead; 64-byte
// alignment; the peak footprint on the function.

// CHECK-LABEL: func.func @chain
// CHECK-SAME:    accel.arg_addrs = array<i64: 64>, accel.weight_bytes = 64 : i64, accel.activation_base = 64 : i64, accel.peak_bytes = 512 : i64
// CHECK-NEXT:    nn.constant dense<1.000000e+00> : tensor<16xf32> {accel.addr = array<i64: 0>}
// CHECK-NEXT:    %[[A:.*]] = nn.relu %x {accel.addr = array<i64: 320>}
// CHECK-NEXT:    %[[B:.*]] = nn.add %[[A]], %{{.*}} {accel.addr = array<i64: 64>}
// CHECK-NEXT:    %[[C:.*]] = nn.relu %[[B]] {accel.addr = array<i64: 320>}
// CHECK-NEXT:    %[[D:.*]] = nn.reshape %[[C]] {accel.addr = array<i64: 320>}
// CHECK-NEXT:    nn.relu %[[D]] {accel.addr = array<i64: 64>}
func.func @chain(%x: tensor<4x16xf32>) -> tensor<64xf32> {
  %w = nn.constant dense<1.000000e+00> : tensor<16xf32>
  %a = nn.relu %x : tensor<4x16xf32>
  %b = nn.add %a, %w : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %c = nn.relu %b : tensor<4x16xf32>
  %d = nn.reshape %c : (tensor<4x16xf32>) -> tensor<64xf32>
  %e = nn.relu %d : tensor<64xf32>
  func.return %e : tensor<64xf32>
}

// -----

// A conv's input is dead after the conv: the relu after it reuses the input's bytes.
// CHECK-LABEL: func.func @conv_relu
// CHECK-SAME:    accel.arg_addrs = array<i64: 0, 1605632>
// CHECK-SAME:    accel.peak_bytes = 1753088 : i64
// CHECK-NEXT:    nn.conv2d %x, %w {accel.addr = array<i64: 802816>
// CHECK-NEXT:    nn.relu %{{.*}} {accel.addr = array<i64: 0>}
func.func @conv_relu(%x: tensor<1x64x56x56xf32>, %w: tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32> {
  %y = nn.conv2d %x, %w {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32>
  %z = nn.relu %y : tensor<1x64x56x56xf32>
  func.return %z : tensor<1x64x56x56xf32>
}
