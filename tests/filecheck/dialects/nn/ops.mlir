// Every nn op parses, verifies and prints in its custom format; the harness also checks
// that the printed text round-trips (print -> parse -> print identical, generic form too).
// Properties equal to their default are not printed (see @data_movement's flatten/gather).

// CHECK-LABEL: func.func @constants()
// CHECK-NEXT:    %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
// CHECK-NEXT:    %d = nn.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
// CHECK-NEXT:    %s = nn.constant dense<5.000000e-01> : tensor<2x2xf32>
// CHECK-NEXT:    %p = nn.constant #nn.weight<"p.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>} : tensor<16x8xf32>
// CHECK-NEXT:    %u = nn.constant #nn.weight<"u.weight"> {nn.sparsity = #nn.sparsity<unstructured, density = 0.25>} : tensor<16x8xf32>
// CHECK-NEXT:    %q = nn.constant #nn.weight<"q.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1, stride = 16>} : tensor<10x64xf32>
func.func @constants() -> (tensor<10x64xf32>, tensor<3xf32>, tensor<2x2xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<10x64xf32>) {
  %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
  %d = nn.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %s = nn.constant dense<0.5> : tensor<2x2xf32>
  %p = nn.constant #nn.weight<"p.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>} : tensor<16x8xf32>
  %u = nn.constant #nn.weight<"u.weight"> {nn.sparsity = #nn.sparsity<unstructured, density = 0.25>} : tensor<16x8xf32>
  %q = nn.constant #nn.weight<"q.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1, stride = 16>} : tensor<10x64xf32>
  func.return %w, %d, %s, %p, %u, %q : tensor<10x64xf32>, tensor<3xf32>, tensor<2x2xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<10x64xf32>
}

// -----

// CHECK-LABEL: func.func @unary(%x: tensor<2x3xf32>)
// CHECK-NEXT:    %[[R:.*]] = nn.relu %x : tensor<2x3xf32>
// CHECK-NEXT:    %[[R6:.*]] = nn.relu6 %[[R]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[C1:.*]] = nn.clip %[[R6]] {min = -1.000000e+00 : f64, max = 1.000000e+00 : f64} : tensor<2x3xf32>
// CHECK-NEXT:    %[[C2:.*]] = nn.clip %[[C1]] {max = 2.000000e+00 : f64} : tensor<2x3xf32>
// CHECK-NEXT:    %[[S:.*]] = nn.sigmoid %[[C2]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[T:.*]] = nn.tanh %[[S]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[G1:.*]] = nn.gelu %[[T]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[G2:.*]] = nn.gelu %[[G1]] {approximate = "tanh"} : tensor<2x3xf32>
// CHECK-NEXT:    %[[SI:.*]] = nn.silu %[[G2]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[H1:.*]] = nn.hardsigmoid %[[SI]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[H2:.*]] = nn.hardsigmoid %[[H1]] {alpha = 2.500000e-01 : f64, beta = 2.500000e-01 : f64} : tensor<2x3xf32>
// CHECK-NEXT:    %[[HS:.*]] = nn.hardswish %[[H2]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[E:.*]] = nn.erf %[[HS]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[SQ:.*]] = nn.sqrt %[[E]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[EX:.*]] = nn.exp %[[SQ]] : tensor<2x3xf32>
// CHECK-NEXT:    %[[N:.*]] = nn.neg %[[EX]] : tensor<2x3xf32>
// CHECK-NEXT:    func.return %[[N]] : tensor<2x3xf32>
func.func @unary(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.relu %x : tensor<2x3xf32>
  %1 = nn.relu6 %0 : tensor<2x3xf32>
  %2 = nn.clip %1 {min = -1.0 : f64, max = 1.0 : f64} : tensor<2x3xf32>
  %3 = nn.clip %2 {max = 2.0 : f64} : tensor<2x3xf32>
  %4 = nn.sigmoid %3 : tensor<2x3xf32>
  %5 = nn.tanh %4 : tensor<2x3xf32>
  %6 = nn.gelu %5 : tensor<2x3xf32>
  %7 = nn.gelu %6 {approximate = "tanh"} : tensor<2x3xf32>
  %8 = nn.silu %7 : tensor<2x3xf32>
  %9 = nn.hardsigmoid %8 : tensor<2x3xf32>
  %10 = nn.hardsigmoid %9 {alpha = 0.25 : f64, beta = 0.25 : f64} : tensor<2x3xf32>
  %11 = nn.hardswish %10 : tensor<2x3xf32>
  %12 = nn.erf %11 : tensor<2x3xf32>
  %13 = nn.sqrt %12 : tensor<2x3xf32>
  %14 = nn.exp %13 : tensor<2x3xf32>
  %15 = nn.neg %14 : tensor<2x3xf32>
  func.return %15 : tensor<2x3xf32>
}

// -----

// Binary ops broadcast (numpy/ONNX rules) and may carry a fused activation.
// CHECK-LABEL: func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>)
// CHECK-NEXT:    %[[ADD:.*]] = nn.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %[[SUB:.*]] = nn.sub %[[ADD]], %b {act = "relu"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %[[MUL:.*]] = nn.mul %b, %[[SUB]] : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %[[DIV:.*]] = nn.div %[[MUL]], %a : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %[[POW:.*]] = nn.pow %[[DIV]], %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %[[POW]]
func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = nn.sub %0, %b {act = "relu"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = nn.mul %b, %1 : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = nn.div %2, %a : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = nn.pow %3, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %4 : tensor<2x3xf32>
}

// -----

// conv2d with and without bias; matmul with broadcast batch dims; linear over the last axis.
// CHECK-LABEL: func.func @contractions
// CHECK:         nn.conv2d %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, groups = 2 : i64, act = "relu6"} : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>, tensor<8xf32>) -> tensor<1x8x4x4xf32>
// CHECK-NEXT:    nn.conv2d %x, %w {groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x6x6xf32>
// CHECK-NEXT:    %[[MM:.*]] = nn.matmul %m, %n : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
// CHECK-NEXT:    nn.linear %[[MM]], %fw, %fb {act = "sigmoid"} : (tensor<4x8x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<4x8x10xf32>
func.func @contractions(%x: tensor<1x4x8x8xf32>, %w: tensor<8x2x3x3xf32>, %b: tensor<8xf32>, %m: tensor<4x8x16xf32>, %n: tensor<16x32xf32>, %fw: tensor<10x32xf32>, %fb: tensor<10xf32>) -> (tensor<1x8x4x4xf32>, tensor<1x8x6x6xf32>, tensor<4x8x10xf32>) {
  %0 = nn.conv2d %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, groups = 2 : i64, act = "relu6"} : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>, tensor<8xf32>) -> tensor<1x8x4x4xf32>
  %1 = nn.conv2d %x, %w {groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x6x6xf32>
  %2 = nn.matmul %m, %n : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
  %3 = nn.linear %2, %fw, %fb {act = "sigmoid"} : (tensor<4x8x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<4x8x10xf32>
  func.return %0, %1, %3 : tensor<1x8x4x4xf32>, tensor<1x8x6x6xf32>, tensor<4x8x10xf32>
}

// -----

// CHECK-LABEL: func.func @normalization
// CHECK:         %[[BN:.*]] = nn.batchnorm %x, %c, %c, %c, %c {epsilon = 1.000000e-03 : f64} : (tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:    %[[LN1:.*]] = nn.layernorm %t, %g, %g : (tensor<128x256xf32>, tensor<256xf32>, tensor<256xf32>) -> tensor<128x256xf32>
// CHECK-NEXT:    %[[LN2:.*]] = nn.layernorm %[[LN1]], %g {axis = 1 : i64, epsilon = 1.000000e-06 : f64} : (tensor<128x256xf32>, tensor<256xf32>) -> tensor<128x256xf32>
// CHECK-NEXT:    %[[SM1:.*]] = nn.softmax %[[LN2]] : tensor<128x256xf32>
// CHECK-NEXT:    %[[SM2:.*]] = nn.softmax %[[SM1]] {axis = 0 : i64} : tensor<128x256xf32>
// CHECK-NEXT:    %[[RM:.*]] = nn.reduce_mean %[[SM2]] {axes = array<i64: -1>} : (tensor<128x256xf32>) -> tensor<128x1xf32>
// CHECK-NEXT:    func.return %[[BN]], %[[SM2]], %[[RM]]
func.func @normalization(%x: tensor<1x4x8x8xf32>, %c: tensor<4xf32>, %t: tensor<128x256xf32>, %g: tensor<256xf32>) -> (tensor<1x4x8x8xf32>, tensor<128x256xf32>, tensor<128x1xf32>) {
  %0 = nn.batchnorm %x, %c, %c, %c, %c {epsilon = 1.0e-03 : f64} : (tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  %1 = nn.layernorm %t, %g, %g : (tensor<128x256xf32>, tensor<256xf32>, tensor<256xf32>) -> tensor<128x256xf32>
  %2 = nn.layernorm %1, %g {axis = 1 : i64, epsilon = 1.0e-06 : f64} : (tensor<128x256xf32>, tensor<256xf32>) -> tensor<128x256xf32>
  %3 = nn.softmax %2 : tensor<128x256xf32>
  %4 = nn.softmax %3 {axis = 0 : i64} : tensor<128x256xf32>
  %5 = nn.reduce_mean %4 {axes = array<i64: -1>} : (tensor<128x256xf32>) -> tensor<128x1xf32>
  func.return %0, %4, %5 : tensor<1x4x8x8xf32>, tensor<128x256xf32>, tensor<128x1xf32>
}

// -----

// CHECK-LABEL: func.func @pooling
// CHECK:         nn.maxpool %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
// CHECK-NEXT:    nn.avgpool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, count_include_pad = 1 : i64} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
// CHECK-NEXT:    nn.global_avg_pool %x : (tensor<1x4x8x8xf32>) -> tensor<1x4x1x1xf32>
func.func @pooling(%x: tensor<1x4x8x8xf32>) -> (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>, tensor<1x4x1x1xf32>) {
  %0 = nn.maxpool %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
  %1 = nn.avgpool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, count_include_pad = 1 : i64} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
  %2 = nn.global_avg_pool %x : (tensor<1x4x8x8xf32>) -> tensor<1x4x1x1xf32>
  func.return %0, %1, %2 : tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>, tensor<1x4x1x1xf32>
}

// -----

// CHECK-LABEL: func.func @data_movement
// CHECK:         %[[RS:.*]] = nn.reshape %x : (tensor<1x32x3x3xf32>) -> tensor<1x288xf32>
// CHECK-NEXT:    %[[FL:.*]] = nn.flatten %x : (tensor<1x32x3x3xf32>) -> tensor<1x288xf32>
// CHECK-NEXT:    nn.transpose %[[FL]] {perm = array<i64: 1, 0>} : (tensor<1x288xf32>) -> tensor<288x1xf32>
// CHECK-NEXT:    %[[CAT:.*]] = nn.concat %[[RS]], %[[FL]] {axis = 1 : i64} : (tensor<1x288xf32>, tensor<1x288xf32>) -> tensor<1x576xf32>
// CHECK-NEXT:    nn.slice %[[CAT]] {starts = array<i64: 0>, ends = array<i64: 4>, axes = array<i64: 1>, steps = array<i64: 2>} : (tensor<1x576xf32>) -> tensor<1x2xf32>
// CHECK-NEXT:    %{{.*}}, %[[HI:.*]] = nn.split %[[FL]] {axis = 1 : i64, sizes = array<i64: 2, 286>} : (tensor<1x288xf32>) -> (tensor<1x2xf32>, tensor<1x286xf32>)
// CHECK-NEXT:    nn.gather %t, %ids : (tensor<1000x64xf32>, tensor<1x8xi64>) -> tensor<1x8x64xf32>
func.func @data_movement(%x: tensor<1x32x3x3xf32>, %t: tensor<1000x64xf32>, %ids: tensor<1x8xi64>) -> (tensor<1x288xf32>, tensor<1x288xf32>, tensor<288x1xf32>, tensor<1x576xf32>, tensor<1x2xf32>, tensor<1x286xf32>, tensor<1x8x64xf32>) {
  %0 = nn.reshape %x : (tensor<1x32x3x3xf32>) -> tensor<1x288xf32>
  %1 = nn.flatten %x {axis = 1 : i64} : (tensor<1x32x3x3xf32>) -> tensor<1x288xf32>
  %2 = nn.transpose %1 {perm = array<i64: 1, 0>} : (tensor<1x288xf32>) -> tensor<288x1xf32>
  %3 = nn.concat %0, %1 {axis = 1 : i64} : (tensor<1x288xf32>, tensor<1x288xf32>) -> tensor<1x576xf32>
  %4 = nn.slice %3 {starts = array<i64: 0>, ends = array<i64: 4>, axes = array<i64: 1>, steps = array<i64: 2>} : (tensor<1x576xf32>) -> tensor<1x2xf32>
  %5, %6 = nn.split %1 {axis = 1 : i64, sizes = array<i64: 2, 286>} : (tensor<1x288xf32>) -> (tensor<1x2xf32>, tensor<1x286xf32>)
  %7 = nn.gather %t, %ids {axis = 0 : i64} : (tensor<1000x64xf32>, tensor<1x8xi64>) -> tensor<1x8x64xf32>
  func.return %0, %1, %2, %3, %4, %6, %7 : tensor<1x288xf32>, tensor<1x288xf32>, tensor<288x1xf32>, tensor<1x576xf32>, tensor<1x2xf32>, tensor<1x286xf32>, tensor<1x8x64xf32>
}

// -----

// Decoder-LLM ops (dialects/nn/llm.py): RMSNorm, rotary embedding, grouped-query attention.
// CHECK-LABEL: func.func @llm
// CHECK:         %[[N:.*]] = nn.rms_norm %q, %g : (tensor<1x4x3x8xf32>, tensor<8xf32>) -> tensor<1x4x3x8xf32>
// CHECK-NEXT:    %[[R:.*]] = nn.rotary %[[N]], %c, %s : (tensor<1x4x3x8xf32>, tensor<1x3x4xf32>, tensor<1x3x4xf32>) -> tensor<1x4x3x8xf32>
// CHECK-NEXT:    nn.attention %[[R]], %k, %k {causal = 1 : i64, scale = 2.500000e-01 : f64} : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x4x3x8xf32>
func.func @llm(%q: tensor<1x4x3x8xf32>, %g: tensor<8xf32>, %c: tensor<1x3x4xf32>, %s: tensor<1x3x4xf32>, %k: tensor<1x2x5x8xf32>) -> tensor<1x4x3x8xf32> {
  %0 = nn.rms_norm %q, %g {epsilon = 1.0e-05 : f64} : (tensor<1x4x3x8xf32>, tensor<8xf32>) -> tensor<1x4x3x8xf32>
  %1 = nn.rotary %0, %c, %s : (tensor<1x4x3x8xf32>, tensor<1x3x4xf32>, tensor<1x3x4xf32>) -> tensor<1x4x3x8xf32>
  %2 = nn.attention %1, %k, %k {causal = 1 : i64, scale = 0.25 : f64} : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x4x3x8xf32>
  func.return %2 : tensor<1x4x3x8xf32>
}

// -----

// Source locations survive a round trip.
// CHECK-LABEL: func.func @locations
// CHECK:         nn.relu %x : tensor<4xf32> loc("model.irf":3:5)
func.func @locations(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.relu %x : tensor<4xf32> loc("model.irf":3:5)
  func.return %0 : tensor<4xf32>
}

// -----

// Training ops (irflow.train): backward ops (nn/gradients.py), losses (nn/losses.py),
// fake quantization (nn/fake_quant.py). Default properties are not printed.
// CHECK-LABEL: func.func @training(
// CHECK-NEXT:    %0 = nn.conv2d_input_grad %dy, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<2x8x3x3xf32>, tensor<8x4x3x3xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %1 = nn.conv2d_weight_grad %x, %dy {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<2x4x6x6xf32>, tensor<2x8x3x3xf32>) -> tensor<8x4x3x3xf32>
// CHECK-NEXT:    %2 = nn.maxpool_grad %x, %p {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<2x4x6x6xf32>, tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %3 = nn.avgpool_grad %x, %p {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, count_include_pad = 1 : i64} : (tensor<2x4x6x6xf32>, tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %4 = nn.activation_grad %x, %2 {fn = "clip", min = -1.000000e+00 : f64, max = 1.000000e+00 : f64} : (tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %5 = nn.softmax_grad %l, %t : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<2x10xf32>
// CHECK-NEXT:    %6, %7 = nn.layernorm_grad %x, %g, %3 : (tensor<2x4x6x6xf32>, tensor<6xf32>, tensor<2x4x6x6xf32>) -> (tensor<2x4x6x6xf32>, tensor<6xf32>)
// CHECK-NEXT:    %8, %9, %10 = nn.batchnorm_grad %x, %m, %m, %m, %4 : (tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x6x6xf32>) -> (tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>)
// CHECK-NEXT:    %11 = nn.sum_to %1 : (tensor<8x4x3x3xf32>) -> tensor<8x1x1x1xf32>
// CHECK-NEXT:    %12 = nn.reshape %11 : (tensor<8x1x1x1xf32>) -> tensor<8xf32>
// CHECK-NEXT:    %13 = nn.reduce_mean_grad %m {axes = array<i64: 0, 2, 3>, keepdims = 0 : i64} : (tensor<4xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %14 = nn.slice_grad %p {starts = array<i64: 0, 1>, ends = array<i64: 6, 6>, axes = array<i64: 2, 3>, steps = array<i64: 2, 2>} : (tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
// CHECK-NEXT:    %15 = nn.gather_grad %ids, %de : (tensor<3xi64>, tensor<3x4xf32>) -> tensor<5x4xf32>
// CHECK-NEXT:    %16 = nn.cross_entropy %l, %y {label_smoothing = 1.000000e-01 : f64} : (tensor<2x10xf32>, tensor<2xi64>) -> tensor<f32>
// CHECK-NEXT:    %17 = nn.cross_entropy_grad %l, %y, %dl : (tensor<2x10xf32>, tensor<2xi64>, tensor<f32>) -> tensor<2x10xf32>
// CHECK-NEXT:    %18 = nn.kl_div %l, %t {temperature = 4.000000e+00 : f64} : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<f32>
// CHECK-NEXT:    %19 = nn.kl_div_grad %l, %t, %dl {temperature = 4.000000e+00 : f64} : (tensor<2x10xf32>, tensor<2x10xf32>, tensor<f32>) -> tensor<2x10xf32>
// CHECK-NEXT:    %20 = nn.mse %l, %t : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<f32>
// CHECK-NEXT:    %21 = nn.mse_grad %l, %t, %dl : (tensor<2x10xf32>, tensor<2x10xf32>, tensor<f32>) -> tensor<2x10xf32>
// CHECK-NEXT:    %22 = nn.fake_quant %w {mode = "weight", bits = 4 : i64, axis = 0 : i64} : tensor<8x4x3x3xf32>
// CHECK-NEXT:    %23 = nn.fake_quant %x {mode = "activation", bits = 8 : i64, scale = 3.906250e-03 : f64, zero_point = 0 : i64, signed = 0 : i64} : tensor<2x4x6x6xf32>
// CHECK-NEXT:    %24 = nn.fake_quant_grad %x, %23 {mode = "activation", bits = 8 : i64, scale = 3.906250e-03 : f64, zero_point = 0 : i64, signed = 0 : i64} : (tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>) -> tensor<2x4x6x6xf32>
func.func @training(%x: tensor<2x4x6x6xf32>, %w: tensor<8x4x3x3xf32>, %dy: tensor<2x8x3x3xf32>, %p: tensor<2x4x3x3xf32>, %l: tensor<2x10xf32>, %t: tensor<2x10xf32>, %y: tensor<2xi64>, %dl: tensor<f32>, %g: tensor<6xf32>, %m: tensor<4xf32>, %ids: tensor<3xi64>, %e: tensor<5x4xf32>, %de: tensor<3x4xf32>) -> (tensor<2x4x6x6xf32>, tensor<8x4x3x3xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<2x10xf32>, tensor<2x4x6x6xf32>, tensor<6xf32>, tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<5x4xf32>, tensor<f32>, tensor<2x10xf32>, tensor<f32>, tensor<2x10xf32>, tensor<f32>, tensor<2x10xf32>, tensor<8x4x3x3xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>) {
  %0 = nn.conv2d_input_grad %dy, %w {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<2x8x3x3xf32>, tensor<8x4x3x3xf32>) -> tensor<2x4x6x6xf32>
  %1 = nn.conv2d_weight_grad %x, %dy {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<2x4x6x6xf32>, tensor<2x8x3x3xf32>) -> tensor<8x4x3x3xf32>
  %2 = nn.maxpool_grad %x, %p {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<2x4x6x6xf32>, tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
  %3 = nn.avgpool_grad %x, %p {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, count_include_pad = 1 : i64} : (tensor<2x4x6x6xf32>, tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
  %4 = nn.activation_grad %x, %2 {fn = "clip", min = -1.000000e+00 : f64, max = 1.000000e+00 : f64} : (tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>) -> tensor<2x4x6x6xf32>
  %5 = nn.softmax_grad %l, %t {axis = -1 : i64} : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<2x10xf32>
  %6, %7 = nn.layernorm_grad %x, %g, %3 {axis = -1 : i64} : (tensor<2x4x6x6xf32>, tensor<6xf32>, tensor<2x4x6x6xf32>) -> (tensor<2x4x6x6xf32>, tensor<6xf32>)
  %8, %9, %10 = nn.batchnorm_grad %x, %m, %m, %m, %4 : (tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x6x6xf32>) -> (tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>)
  %11 = nn.sum_to %1 : (tensor<8x4x3x3xf32>) -> tensor<8x1x1x1xf32>
  %12 = nn.reshape %11 : (tensor<8x1x1x1xf32>) -> tensor<8xf32>
  %13 = nn.reduce_mean_grad %m {axes = array<i64: 0, 2, 3>, keepdims = 0 : i64} : (tensor<4xf32>) -> tensor<2x4x6x6xf32>
  %14 = nn.slice_grad %p {starts = array<i64: 0, 1>, ends = array<i64: 6, 6>, axes = array<i64: 2, 3>, steps = array<i64: 2, 2>} : (tensor<2x4x3x3xf32>) -> tensor<2x4x6x6xf32>
  %15 = nn.gather_grad %ids, %de : (tensor<3xi64>, tensor<3x4xf32>) -> tensor<5x4xf32>
  %16 = nn.cross_entropy %l, %y {label_smoothing = 1.000000e-01 : f64} : (tensor<2x10xf32>, tensor<2xi64>) -> tensor<f32>
  %17 = nn.cross_entropy_grad %l, %y, %dl : (tensor<2x10xf32>, tensor<2xi64>, tensor<f32>) -> tensor<2x10xf32>
  %18 = nn.kl_div %l, %t {temperature = 4.000000e+00 : f64} : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<f32>
  %19 = nn.kl_div_grad %l, %t, %dl {temperature = 4.000000e+00 : f64} : (tensor<2x10xf32>, tensor<2x10xf32>, tensor<f32>) -> tensor<2x10xf32>
  %20 = nn.mse %l, %t : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<f32>
  %21 = nn.mse_grad %l, %t, %dl : (tensor<2x10xf32>, tensor<2x10xf32>, tensor<f32>) -> tensor<2x10xf32>
  %22 = nn.fake_quant %w {mode = "weight", bits = 4 : i64, axis = 0 : i64} : tensor<8x4x3x3xf32>
  %23 = nn.fake_quant %x {mode = "activation", bits = 8 : i64, scale = 3.906250e-03 : f64, zero_point = 0 : i64, signed = 0 : i64} : tensor<2x4x6x6xf32>
  %24 = nn.fake_quant_grad %x, %23 {mode = "activation", bits = 8 : i64, scale = 3.906250e-03 : f64, zero_point = 0 : i64, signed = 0 : i64} : (tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>) -> tensor<2x4x6x6xf32>
  func.return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24 : tensor<2x4x6x6xf32>, tensor<8x4x3x3xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<2x10xf32>, tensor<2x4x6x6xf32>, tensor<6xf32>, tensor<2x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>, tensor<5x4xf32>, tensor<f32>, tensor<2x10xf32>, tensor<f32>, tensor<2x10xf32>, tensor<f32>, tensor<2x10xf32>, tensor<8x4x3x3xf32>, tensor<2x4x6x6xf32>, tensor<2x4x6x6xf32>
}

// CHECK-LABEL: func.func @reduce_grad(
// CHECK-NEXT:    %0 = nn.reduce_grad %x, %y, %y {fn = "reduce_max", axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x3xf32>
func.func @reduce_grad(%x: tensor<2x3xf32>, %y: tensor<2xf32>) -> tensor<2x3xf32> {
  %0 = nn.reduce_grad %x, %y, %y {fn = "reduce_max", axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
