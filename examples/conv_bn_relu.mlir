// conv -> batchnorm -> relu with inline constants (no weight store): input for stock
// `xdsl-opt`, which does not load `.npz` weights (docs/passes.md, "Stock xDSL tools").
//   xdsl-opt examples/conv_bn_relu.mlir -p fold-batchnorm,fuse-activation,cse
func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.constant dense<[[[[0.5]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %r = nn.relu %z : tensor<1x2x4x4xf32>
  func.return %r : tensor<1x2x4x4xf32>
}
