// cse (xDSL's CommonSubexpressionElimination) on nn IR: identical pure ops on the same
// operands with the same properties become one.

// CHECK-LABEL: func.func @duplicates
// CHECK-NEXT:    %[[C:.*]] = nn.constant dense<1.000000e+00> : tensor<4xf32>
// CHECK-NEXT:    %[[R:.*]] = nn.relu %x : tensor<4xf32>
// CHECK-NEXT:    %[[S:.*]] = nn.add %[[R]], %[[C]]
// CHECK-NEXT:    %[[T:.*]] = nn.add %[[S]], %[[S]]
// CHECK-NEXT:    func.return %[[T]]
func.func @duplicates(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = nn.constant dense<1.0> : tensor<4xf32>
  %c1 = nn.constant dense<1.0> : tensor<4xf32>
  %r0 = nn.relu %x : tensor<4xf32>
  %r1 = nn.relu %x : tensor<4xf32>
  %s0 = nn.add %r0, %c0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %s1 = nn.add %r1, %c1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = nn.add %s0, %s1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %t : tensor<4xf32>
}

// -----

// Different properties or different weights are different computations.
// CHECK-LABEL: func.func @distinct
// CHECK:         nn.softmax %x : tensor<2x4xf32>
// CHECK-NEXT:    nn.softmax %x {axis = 0 : i64} : tensor<2x4xf32>
// CHECK:         nn.constant #nn.weight<"a">
// CHECK-NEXT:    nn.constant #nn.weight<"b">
func.func @distinct(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %0 = nn.softmax %x : tensor<2x4xf32>
  %1 = nn.softmax %x {axis = 0 : i64} : tensor<2x4xf32>
  %a = nn.constant #nn.weight<"a"> : tensor<4xf32>
  %b = nn.constant #nn.weight<"b"> : tensor<4xf32>
  func.return %0, %1, %a, %b : tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>
}
