// prune: each case names its mode with a PIPELINE line. Weights are inline so the
// pruned values are visible; the `nn.sparsity` attribute states the pattern.

// -----
// PIPELINE: prune{mode=nm n=2 m=4}
// 2:4 along the columns (the reduction axis of nn.linear): the 2 largest |w| of every 4.
// CHECK-LABEL: func.func @nm_linear
// CHECK:       nn.constant dense<{{\[\[}}0.000000e+00, -4.000000e+00, 3.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, -6.000000e+00, 5.000000e+00], [0.000000e+00, 0.000000e+00, 3.000000e-01, 4.000000e-01, -8.000000e-01, 7.000000e-01, 0.000000e+00, 0.000000e+00]]>
// CHECK-SAME:  : tensor<2x8xf32> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
// CHECK-NEXT:  nn.linear %x, %w : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32>
func.func @nm_linear(%x: tensor<1x8xf32>) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[1.0, -4.0, 3.0, 0.5, 2.0, 0.25, -6.0, 5.0], [0.1, 0.2, 0.3, 0.4, -0.8, 0.7, 0.6, 0.5]]> : tensor<2x8xf32>
  %y = nn.linear %x, %w : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}

// -----
// PIPELINE: prune{mode=nm n=2 m=4}
// A linear after a flatten of 4 channels x 2 positions: runs of 4 channels at one position,
// columns {0, 2, 4, 6} and {1, 3, 5, 7} (stride 2), not 4 neighbouring columns.
// CHECK-LABEL: func.func @nm_after_flatten
// CHECK:       nn.constant dense<{{\[\[}}8.000000e+00, 0.000000e+00, 7.000000e+00, 0.000000e+00, 0.000000e+00, 3.000000e+00, 0.000000e+00, 4.000000e+00]]>
// CHECK-SAME:  : tensor<1x8xf32> {nn.sparsity = #nn.sparsity<"2:4", axis = 1, stride = 2>}
func.func @nm_after_flatten(%x: tensor<1x4x1x2xf32>) -> tensor<1x1xf32> {
  %f = nn.flatten %x : (tensor<1x4x1x2xf32>) -> tensor<1x8xf32>
  %w = nn.constant dense<[[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]]> : tensor<1x8xf32>
  %y = nn.linear %f, %w : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x1xf32>
  func.return %y : tensor<1x1xf32>
}

// -----
// PIPELINE: prune{mode=magnitude sparsity=0.25 scope=layer}
// Unstructured: the 4 smallest of 16 become zero; the density is recorded.
// CHECK-LABEL: func.func @magnitude_linear
// CHECK:       nn.constant dense<{{\[\[}}1.000000e+00, -4.000000e+00, 3.000000e+00, 5.000000e-01, 2.000000e+00, 0.000000e+00, -6.000000e+00, 5.000000e+00], [0.000000e+00, 0.000000e+00, 0.000000e+00, 4.000000e-01, -8.000000e-01, 7.000000e-01, 6.000000e-01, 5.000000e-01]]>
// CHECK-SAME:  {nn.sparsity = #nn.sparsity<unstructured, density = 0.75>}
func.func @magnitude_linear(%x: tensor<1x8xf32>) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[1.0, -4.0, 3.0, 0.5, 2.0, 0.25, -6.0, 5.0], [0.1, 0.2, 0.3, 0.4, -0.8, 0.7, 0.6, 0.5]]> : tensor<2x8xf32>
  %y = nn.linear %x, %w : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}

// -----
// PIPELINE: prune{mode=channel ratio=0.5}
// Filters 1 and 3 of the first conv have the smallest L1 norms and go; the consumer loses
// the matching input channels. With their weights zero those channels are constant
// (relu(bias) = 1 and 2), so their contribution W2[:, 1] * 1 + W2[:, 3] * 2 = [3, 2, 1.5]
// becomes the consumer's bias. The second conv's output is returned: kept (a warning).
// CHECK-LABEL: func.func @channel_chain
// CHECK:       %[[W1:.*]] = nn.constant dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}2.000000e+00]]], {{\[\[\[}}-3.000000e+00]], {{\[\[}}1.000000e+00]]]]> : tensor<2x2x1x1xf32>
// CHECK-NEXT:  %[[B1:.*]] = nn.constant dense<[5.000000e-01, -1.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:  %[[Y:.*]] = nn.conv2d %x, %[[W1]], %[[B1]] {act = "relu"} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:  %[[W2:.*]] = nn.constant {{.*}} : tensor<3x2x1x1xf32>
// CHECK-NEXT:  %[[B2:.*]] = nn.constant dense<[3.000000e+00, 2.000000e+00, 1.500000e+00]> : tensor<3xf32>
// CHECK-NEXT:  nn.conv2d %[[Y]], %[[W2]], %[[B2]] : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
func.func @channel_chain(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %w1 = nn.constant dense<[[[[1.0]], [[2.0]]], [[[0.1]], [[0.1]]], [[[-3.0]], [[1.0]]], [[[0.0]], [[0.2]]]]> : tensor<4x2x1x1xf32>
  %b1 = nn.constant dense<[0.5, 1.0, -1.0, 2.0]> : tensor<4xf32>
  %y = nn.conv2d %x, %w1, %b1 {act = "relu"} : (tensor<1x2x4x4xf32>, tensor<4x2x1x1xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %w2 = nn.constant dense<[[[[1.0]], [[1.0]], [[1.0]], [[1.0]]], [[[2.0]], [[0.0]], [[-1.0]], [[1.0]]], [[[0.5]], [[0.5]], [[0.5]], [[0.5]]]]> : tensor<3x4x1x1xf32>
  %z = nn.conv2d %y, %w2 : (tensor<1x4x4x4xf32>, tensor<3x4x1x1xf32>) -> tensor<1x3x4x4xf32>
  func.return %z : tensor<1x3x4x4xf32>
}

// -----
// PIPELINE: prune{mode=channel ratio=0.5}
// A conv whose output is a graph output keeps its channels.
// CHECK-LABEL: func.func @channel_output_kept
// CHECK:       nn.conv2d %x, %w : (tensor<1x2x4x4xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x4x4xf32>
func.func @channel_output_kept(%x: tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %w = nn.constant dense<[[[[1.0]], [[2.0]]], [[[0.1]], [[0.1]]], [[[-3.0]], [[1.0]]], [[[0.0]], [[0.2]]]]> : tensor<4x2x1x1xf32>
  %y = nn.conv2d %x, %w : (tensor<1x2x4x4xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x4x4xf32>
  func.return %y : tensor<1x4x4x4xf32>
}
