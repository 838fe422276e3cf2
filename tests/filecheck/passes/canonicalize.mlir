// canonicalize (xDSL's) on nn IR: folds and canonical patterns where the dialect has them,
// then removes dead pure ops. Live ops are kept unchanged.

// CHECK-LABEL: func.func @keeps_live_ops
// CHECK-NEXT:    %[[Y:.*]] = nn.conv2d %x, %w {act = "relu"}
// CHECK-NEXT:    %[[P:.*]] = nn.global_avg_pool %[[Y]]
// CHECK-NEXT:    func.return %[[P]]
// CHECK-NOT:     nn.sigmoid
func.func @keeps_live_ops(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x1x1xf32>) -> tensor<1x3x1x1xf32> {
  %y = nn.conv2d %x, %w {act = "relu"} : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x4x4xf32>
  %dead = nn.sigmoid %y : tensor<1x3x4x4xf32>
  %p = nn.global_avg_pool %y : (tensor<1x3x4x4xf32>) -> tensor<1x3x1x1xf32>
  func.return %p : tensor<1x3x1x1xf32>
}
