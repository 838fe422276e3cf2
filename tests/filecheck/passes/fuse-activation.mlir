// fuse-activation: a parameter-free activation whose input has no other user becomes the
// producer's `act` property.

// CHECK-LABEL: func.func @conv_relu
// CHECK-NEXT:    %[[Y:.*]] = nn.conv2d %x, %w, %b {act = "relu"} : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32> loc("model.irf":4:3)
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     nn.relu
func.func @conv_relu(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x1x1xf32>, %b: tensor<3xf32>) -> tensor<1x3x4x4xf32> {
  %y = nn.conv2d %x, %w, %b : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32> loc("model.irf":4:3)
  %z = nn.relu %y : tensor<1x3x4x4xf32> loc("model.irf":5:3)
  func.return %z : tensor<1x3x4x4xf32>
}

// -----

// Every producer kind with an `act` property, and every fusable activation.
// CHECK-LABEL: func.func @producers
// CHECK-NEXT:    %[[L:.*]] = nn.linear %x, %w {act = "relu6"}
// CHECK-NEXT:    %[[M:.*]] = nn.matmul %[[L]], %v {act = "sigmoid"}
// CHECK-NEXT:    %[[A:.*]] = nn.add %[[M]], %[[M]] {act = "tanh"}
// CHECK-NEXT:    %[[S:.*]] = nn.sub %[[A]], %[[A]] {act = "silu"}
// CHECK-NEXT:    %[[P:.*]] = nn.mul %[[S]], %[[S]] {act = "hardswish"}
// CHECK-NEXT:    func.return %[[P]]
func.func @producers(%x: tensor<2x4xf32>, %w: tensor<4x4xf32>, %v: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %0 = nn.linear %x, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %1 = nn.relu6 %0 : tensor<2x4xf32>
  %2 = nn.matmul %1, %v : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %3 = nn.sigmoid %2 : tensor<2x4xf32>
  %4 = nn.add %3, %3 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %5 = nn.tanh %4 : tensor<2x4xf32>
  %6 = nn.sub %5, %5 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %7 = nn.silu %6 : tensor<2x4xf32>
  %8 = nn.mul %7, %7 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %9 = nn.hardswish %8 : tensor<2x4xf32>
  func.return %9 : tensor<2x4xf32>
}

// -----

// Not fused: the pre-activation value has a second user.
// CHECK-LABEL: func.func @two_users
// CHECK-NEXT:    %[[Y:.*]] = nn.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %[[Z:.*]] = nn.relu %[[Y]]
// CHECK-NEXT:    func.return %[[Y]], %[[Z]]
func.func @two_users(%a: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %y = nn.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %z = nn.relu %y : tensor<4xf32>
  func.return %y, %z : tensor<4xf32>, tensor<4xf32>
}

// -----

// One activation per op: relu(relu(add)) fuses the first relu only.
// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %[[Y:.*]] = nn.add %a, %a {act = "relu"}
// CHECK-NEXT:    %[[Z:.*]] = nn.relu %[[Y]]
// CHECK-NEXT:    func.return %[[Z]]
func.func @chain(%a: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %z = nn.relu %y : tensor<4xf32>
  %r = nn.relu %z : tensor<4xf32>
  func.return %r : tensor<4xf32>
}

// -----

// Not fused: activations with parameters (gelu, clip) and producers without `act` (pooling).
// CHECK-LABEL: func.func @not_fusable
// CHECK:         nn.add %a, %a : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
// CHECK-NEXT:    nn.gelu
// CHECK-NEXT:    nn.clip
// CHECK-NEXT:    nn.maxpool
// CHECK-NEXT:    nn.relu
// CHECK-NOT:     act =
func.func @not_fusable(%a: tensor<1x1x2x2xf32>) -> tensor<1x1x1x1xf32> {
  %0 = nn.add %a, %a : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %1 = nn.gelu %0 : tensor<1x1x2x2xf32>
  %2 = nn.clip %1 {min = 0.0 : f64, max = 6.0 : f64} : tensor<1x1x2x2xf32>
  %3 = nn.maxpool %2 {kernel = array<i64: 2, 2>} : (tensor<1x1x2x2xf32>) -> tensor<1x1x1x1xf32>
  %4 = nn.relu %3 : tensor<1x1x1x1xf32>
  func.return %4 : tensor<1x1x1x1xf32>
}

// -----

// PIPELINE: fuse-activation{only=relu}
// With `only`, other activations stay as they are.
// CHECK-LABEL: func.func @only_relu
// CHECK-NEXT:    %[[Y:.*]] = nn.add %a, %a {act = "relu"}
// CHECK-NEXT:    %[[Z:.*]] = nn.add %[[Y]], %[[Y]] : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    nn.relu6 %[[Z]]
func.func @only_relu(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.add %a, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = nn.relu %0 : tensor<4xf32>
  %2 = nn.add %1, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = nn.relu6 %2 : tensor<4xf32>
  func.return %3 : tensor<4xf32>
}
