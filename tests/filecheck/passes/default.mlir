// The `default` pipeline (irflow/pipelines.py) on a conv-batchnorm-relu block with a
// residual add: the batchnorm folds, the relus fuse, the old constants disappear.

// CHECK-LABEL: func.func @block
// CHECK-DAG:     %[[W:.*]] = nn.constant dense<{{.*}}> : tensor<2x2x1x1xf32>
// CHECK-DAG:     %[[B:.*]] = nn.constant dense<{{.*}}> : tensor<2xf32>
// CHECK:         %[[Y:.*]] = nn.conv2d %x, %[[W]], %[[B]] {act = "relu"}
// CHECK-NEXT:    %[[Z:.*]] = nn.add %[[Y]], %x {act = "relu"}
// CHECK-NEXT:    func.return %[[Z]]
// CHECK-NOT:     nn.batchnorm
func.func @block(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<0.5> : tensor<2x2x1x1xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %n = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.relu %n : tensor<1x2x4x4xf32>
  %s = nn.add %r, %x : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %t = nn.relu %s : tensor<1x2x4x4xf32>
  func.return %t : tensor<1x2x4x4xf32>
}
