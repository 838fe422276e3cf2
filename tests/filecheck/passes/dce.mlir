// dce (xDSL's DeadCodeElimination): unused nn ops are Pure, so they are removed.

// CHECK-LABEL: func.func @dead
// CHECK-NEXT:    %[[R:.*]] = nn.relu %x
// CHECK-NEXT:    func.return %[[R]]
// CHECK-NOT:     nn.constant
// CHECK-NOT:     nn.sigmoid
func.func @dead(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = nn.constant #nn.weight<"unused"> : tensor<4xf32>
  %s = nn.sigmoid %x : tensor<4xf32>
  %t = nn.add %s, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = nn.relu %x : tensor<4xf32>
  func.return %r : tensor<4xf32>
}
