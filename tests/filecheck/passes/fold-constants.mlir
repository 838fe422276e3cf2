// fold-constants: ops whose operands are all nn.constant are evaluated with the reference
// kernels and replaced by constants; computed from inline constants only, they stay inline.

// A chain folds to one constant; the op with a runtime operand stays.
// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %[[C:.*]] = nn.constant dense<[0.000000e+00, 4.000000e+00, 1.000000e+00]> : tensor<3xf32>
// CHECK-NEXT:    %[[Y:.*]] = nn.mul %x, %[[C]] : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     nn.relu
// CHECK-NOT:     nn.add
func.func @chain(%x: tensor<3xf32>) -> tensor<3xf32> {
  %a = nn.constant dense<[-3.0, 2.0, -0.5]> : tensor<3xf32>
  %b = nn.constant dense<[1.0, 2.0, 1.5]> : tensor<3xf32>
  %s = nn.add %a, %b : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %r = nn.relu %s : tensor<3xf32>
  %y = nn.mul %x, %r : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}

// -----

// Data movement folds too (transpose, reshape); the location and name are kept.
// CHECK-LABEL: func.func @movement
// CHECK-NEXT:    %t = nn.constant dense<{{\[\[}}1.000000e+00, 3.000000e+00], [2.000000e+00, 4.000000e+00]]> : tensor<2x2xf32> loc("model.irf":3:5)
// CHECK-NEXT:    nn.matmul %x, %t
func.func @movement(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %t = nn.transpose %w {perm = array<i64: 1, 0>} : (tensor<2x2xf32>) -> tensor<2x2xf32> loc("model.irf":3:5)
  %y = nn.matmul %x, %t : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}

// -----

// A multi-result op becomes one constant per result.
// CHECK-LABEL: func.func @split
// CHECK-NEXT:    %[[A:.*]] = nn.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<3.000000e+00> : tensor<1xf32>
// CHECK-NEXT:    nn.concat %[[B]], %x, %[[A]]
// CHECK-NOT:     nn.split
func.func @split(%x: tensor<2xf32>) -> tensor<5xf32> {
  %c = nn.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %a, %b = nn.split %c {axis = 0 : i64, sizes = array<i64: 2, 1>} : (tensor<3xf32>) -> (tensor<2xf32>, tensor<1xf32>)
  %y = nn.concat %b, %x, %a {axis = 0 : i64} : (tensor<1xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<5xf32>
  func.return %y : tensor<5xf32>
}

// -----

// A constant that a runtime op still uses is kept; nothing else changes.
// CHECK-LABEL: func.func @shared
// CHECK-NEXT:    %[[C:.*]] = nn.constant dense<[1.000000e+00, -2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[N:.*]] = nn.constant dense<[-1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[S:.*]] = nn.add %x, %[[C]]
// CHECK-NEXT:    nn.add %[[S]], %[[N]]
func.func @shared(%x: tensor<2xf32>) -> tensor<2xf32> {
  %c = nn.constant dense<[1.0, -2.0]> : tensor<2xf32>
  %n = nn.neg %c : tensor<2xf32>
  %s = nn.add %x, %c : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %y = nn.add %s, %n : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}
