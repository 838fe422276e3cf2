// fold-batchnorm: W' = W * s, b' = (b - mean) * s + beta with s = scale / sqrt(var + eps).
// The numbers are chosen so the folded values are exact: var + eps = [4, 9] -> sqrt [2, 3],
// scale = [4, 3] -> s = [2, 1].

// CHECK-LABEL: func.func @conv_bias
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<[[[[2.000000e+00]]], [[[1.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<[5.000000e-01, 1.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = nn.conv2d %x, %[[W]], %[[B]] : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     nn.batchnorm
func.func @conv_bias(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %b = nn.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w, %b : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Without a bias the folded bias is beta - mean * s; the conv's properties and location are kept.
// CHECK-LABEL: func.func @conv_no_bias
// CHECK:         %[[B:.*]] = nn.constant dense<[-1.500000e+00, -1.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    nn.conv2d %x, %{{.*}}, %[[B]] {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("model.irf":7:3)
// CHECK-NOT:     nn.batchnorm
func.func @conv_no_bias(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x3x3xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32> loc("model.irf":7:3)
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("model.irf":8:3)
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Depthwise (groups = channels): the scale still applies per output channel.
// CHECK-LABEL: func.func @depthwise
// CHECK:         nn.constant dense<[[[[2.000000e+00]]], [[[1.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK:         nn.conv2d %x, %{{.*}}, %{{.*}} {groups = 2 : i64}
// CHECK-NOT:     nn.batchnorm
func.func @depthwise(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w {groups = 2 : i64} : (tensor<1x2x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// A rank-2 linear folds the same way (batchnorm's axis 1 is its features axis).
// CHECK-LABEL: func.func @linear
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<[[2.000000e+00, 2.000000e+00, 2.000000e+00], [1.000000e+00, 1.000000e+00, 1.000000e+00]]> : tensor<2x3xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<[-1.500000e+00, -1.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    nn.linear %x, %[[W]], %[[B]] : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
// CHECK-NOT:     nn.batchnorm
func.func @linear(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x3xf32>
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.linear %x, %w : (tensor<4x3xf32>, tensor<2x3xf32>) -> tensor<4x2xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<4x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  func.return %z : tensor<4x2xf32>
}

// -----

// A pruned weight's sparsity annotation survives (scaling keeps zeros zero).
// CHECK-LABEL: func.func @keeps_sparsity
// CHECK:         nn.constant dense<{{.*}}> : tensor<2x4x1x1xf32> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
// CHECK-NOT:     nn.batchnorm
func.func @keeps_sparsity(%x: tensor<1x4x1x1xf32>) -> tensor<1x2x1x1xf32> {
  %w = nn.constant dense<[[[[1.0]], [[0.0]], [[2.0]], [[0.0]]], [[[0.0]], [[3.0]], [[0.0]], [[4.0]]]]> : tensor<2x4x1x1xf32> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
  %scale = nn.constant dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = nn.constant dense<[0.5, -1.0]> : tensor<2xf32>
  %mean = nn.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %var = nn.constant dense<[3.0, 8.0]> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x4x1x1xf32>, tensor<2x4x1x1xf32>) -> tensor<1x2x1x1xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x1x1xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x1x1xf32>
  func.return %z : tensor<1x2x1x1xf32>
}

// -----

// Not folded: the conv's output is also returned, so both values are needed.
// CHECK-LABEL: func.func @two_users
// CHECK:         %[[Y:.*]] = nn.conv2d %x, %w
// CHECK-NEXT:    %[[Z:.*]] = nn.batchnorm %[[Y]]
// CHECK-NEXT:    func.return %[[Y]], %[[Z]]
func.func @two_users(%x: tensor<1x1x2x2xf32>, %scale: tensor<2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %scale, %scale, %scale, %scale : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %y, %z : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}

// -----

// Not folded: the batchnorm's parameters are function arguments, not constants.
// CHECK-LABEL: func.func @params_not_constant
// CHECK:         nn.conv2d
// CHECK-NEXT:    nn.batchnorm
func.func @params_not_constant(%x: tensor<1x1x2x2xf32>, %p: tensor<2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %p, %p, %p, %p : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Not folded: an activation already fused into the conv sits between conv and batchnorm.
// CHECK-LABEL: func.func @conv_with_act
// CHECK:         nn.conv2d %x, %w {act = "relu"}
// CHECK-NEXT:    nn.batchnorm
func.func @conv_with_act(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = nn.constant dense<1.0> : tensor<2xf32>
  %y = nn.conv2d %x, %w {act = "relu"} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %c, %c, %c, %c : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Not folded: var + epsilon = 0 would divide by zero; the batchnorm stays visible.
// CHECK-LABEL: func.func @zero_variance
// CHECK:         nn.batchnorm
func.func @zero_variance(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = nn.constant dense<1.0> : tensor<2xf32>
  %v = nn.constant dense<0.0> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %c, %c, %c, %v {epsilon = 0.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Not folded: a batchnorm whose input is not a conv or linear.
// CHECK-LABEL: func.func @not_after_conv
// CHECK:         nn.batchnorm %x
func.func @not_after_conv(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %c = nn.constant dense<1.0> : tensor<2xf32>
  %z = nn.batchnorm %x, %c, %c, %c, %c : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// Weights in the store (fold-batchnorm.npz beside this file): the folded arrays are new
// store entries named after the conv's weight; nothing is inlined.
// CHECK-LABEL: func.func @weight_store
// CHECK-NEXT:    %[[W:.*]] = nn.constant #nn.weight<"conv1.weight.bnfold"> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant #nn.weight<"conv1.bias.bnfold"> : tensor<2xf32>
// CHECK-NEXT:    nn.conv2d %x, %[[W]], %[[B]]
// CHECK-NOT:     bn1.
func.func @weight_store(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant #nn.weight<"conv1.weight"> : tensor<2x1x1x1xf32>
  %scale = nn.constant #nn.weight<"bn1.weight"> : tensor<2xf32>
  %beta = nn.constant #nn.weight<"bn1.bias"> : tensor<2xf32>
  %mean = nn.constant #nn.weight<"bn1.running_mean"> : tensor<2xf32>
  %var = nn.constant #nn.weight<"bn1.running_var"> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// -----

// One constant feeding several batchnorm operands: s = 1 / sqrt(1 + 3) = 0.5,
// b' = (0 - 1) * 0.5 + 1 = 0.5; the shared constant is erased once.
// CHECK-LABEL: func.func @shared_params
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<5.000000e-01> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = nn.constant dense<5.000000e-01> : tensor<2xf32>
// CHECK-NEXT:    nn.conv2d %x, %[[W]], %[[B]]
// CHECK-NEXT:    func.return
func.func @shared_params(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = nn.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = nn.constant dense<1.0> : tensor<2xf32>
  %y = nn.conv2d %x, %w : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = nn.batchnorm %y, %c, %c, %c, %c {epsilon = 3.0 : f64} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}
