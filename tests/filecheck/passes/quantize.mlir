// quantize: conv/linear/matmul become the same nn ops on !quant.uniform tensors, from the
// ranges `calibrate` recorded (`quant.range`). Integer values flow through max-pool and
// flatten; quant.qcast/quant.dcast appear only at the edges and around float ops.

// CHECK-LABEL: func.func @cnn
// Input range [0, 1], non-negative: symmetric int8 stores it unsigned (u8, zero point 0).
// CHECK-NEXT:    %[[X:.*]] = quant.qcast %x : tensor<1x1x4x4xf32> to tensor<1x1x4x4x!quant.uniform<u8:f32, 0.003921568859368563>>
// Weights: symmetric, narrow range, one scale per output channel (max |w| / 127).
// CHECK-NEXT:    %[[W:.*]] = nn.constant #nn.weight<"conv2d.weight.q8"> : tensor<2x1x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.007874015718698502,0.003937007859349251}>>
// The fused relu stays an `act` (a clamp at the zero point in integers).
// CHECK-NEXT:    %[[C:.*]] = nn.conv2d %[[X]], %[[W]] {{.*}}act = "relu"{{.*}} -> tensor<1x2x4x4x!quant.uniform<u8:f32, 0.003921568859368563>>
// CHECK-NEXT:    %[[P:.*]] = nn.maxpool %[[C]] {{.*}} -> tensor<1x2x2x2x!quant.uniform<u8:f32, 0.003921568859368563>>
// CHECK-NEXT:    %[[F:.*]] = nn.flatten %[[P]] {{.*}} -> tensor<1x8x!quant.uniform<u8:f32, 0.003921568859368563>>
// CHECK-NEXT:    %[[V:.*]] = nn.constant #nn.weight<"linear.weight.q8">
// The last layer feeds only the output: it keeps its int32 accumulator (scale s_x * s_w).
// CHECK-NEXT:    %[[Y:.*]] = nn.linear %[[F]], %[[V]] {{.*}} -> tensor<1x2x!quant.uniform<i32:f32:1, {7.719623710156654e-06,7.719623710156654e-06}>>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[Y]] : tensor<1x2x!quant.uniform<i32:f32:1, {{.*}}>> to tensor<1x2xf32>
// CHECK-NEXT:    func.return %[[D]]
// CHECK-NOT:     quant.qcast
func.func @cnn(%x: tensor<1x1x4x4xf32> {quant.range = array<f64: 0.0, 1.0>}) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[[[1.0]]], [[[0.5]]]]> : tensor<2x1x1x1xf32>
  %c = nn.conv2d %x, %w {act = "relu", quant.range = array<f64: 0.0, 1.0>} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %p = nn.maxpool %c {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, quant.range = array<f64: 0.0, 1.0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %f = nn.flatten %p {quant.range = array<f64: 0.0, 1.0>} : (tensor<1x2x2x2xf32>) -> tensor<1x8xf32>
  %v = nn.constant dense<0.25> : tensor<2x8xf32>
  %y = nn.linear %f, %v {quant.range = array<f64: -2.0, 2.0>} : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}

// -----

// Per-tensor weights, asymmetric activations (an int8 zero point), an int32 bias, and a
// float op (softmax) after the quantized linear: dequantized right after it.
// PIPELINE: quantize{granularity=per-tensor symmetric=false}
// CHECK-LABEL: func.func @mlp
// CHECK-NEXT:    %[[X:.*]] = quant.qcast %x : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.003921568859368563:-128>>
// CHECK-NEXT:    %[[W:.*]] = nn.constant #nn.weight<"linear.weight.q8"> : tensor<2x4x!quant.uniform<i8<-127:127>:f32, 0.007874015718698502>>
// CHECK-NEXT:    %[[B:.*]] = nn.constant #nn.weight<"linear.bias.q32"> : tensor<2x!quant.uniform<i32:f32, 3.0878494840626616e-05>>
// CHECK-NEXT:    %[[H:.*]] = nn.linear %[[X]], %[[W]], %[[B]] {{.*}} -> tensor<1x2x!quant.uniform<i32:f32, 3.0878494840626616e-05>>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[H]]
// CHECK-NEXT:    %[[S:.*]] = nn.softmax %[[D]]
// CHECK-NEXT:    func.return %[[S]]
func.func @mlp(%x: tensor<1x4xf32> {quant.range = array<f64: 0.0, 1.0>}) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[0.5, -0.25, 1.0, 0.0], [0.1, 0.2, -0.3, 0.4]]> : tensor<2x4xf32>
  %b = nn.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %h = nn.linear %x, %w, %b {quant.range = array<f64: -1.0, 2.0>} : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %s = nn.softmax %h {quant.range = array<f64: 0.0, 1.0>} : tensor<1x2xf32>
  func.return %s : tensor<1x2xf32>
}

// -----

// Weight-only int4: weights stored quantized and dequantized in front of the float op;
// activations stay float, so no ranges are needed.
// PIPELINE: quantize{weight-only=true bits=4}
// CHECK-LABEL: func.func @weight_only
// CHECK-NEXT:    %[[W:.*]] = nn.constant #nn.weight<"linear.weight.q4"> : tensor<2x4x!quant.uniform<i4<-7:7>:f32:0, {0.1428571492433548,0.05714285746216774}>>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[W]] {{.*}} to tensor<2x4xf32>
// CHECK-NEXT:    %[[Y:.*]] = nn.linear %x, %[[D]] : (tensor<1x4xf32>, tensor<2x4xf32>) -> tensor<1x2xf32>
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     quant.qcast
func.func @weight_only(%x: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %w = nn.constant dense<[[0.5, -0.25, 1.0, 0.0], [0.1, 0.2, -0.3, 0.4]]> : tensor<2x4xf32>
  %y = nn.linear %x, %w : (tensor<1x4xf32>, tensor<2x4xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}

// -----

// concat stays integer: inputs with other parameters are requantized to the result's;
// a standalone relu on an integer value clamps in integers (same type in and out).
// CHECK-LABEL: func.func @concat
// CHECK:         %[[A:.*]] = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<u8:f32, 0.003921568859368563>>
// CHECK:         %[[B:.*]] = nn.conv2d {{.*}} -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.031496062874794006>>
// CHECK-NEXT:    %[[R:.*]] = irq.requantize %[[A]] : tensor<1x2x4x4x!quant.uniform<u8:f32, 0.003921568859368563>> to tensor<1x2x4x4x!quant.uniform<i8:f32, 0.031496062874794006>>
// CHECK-NEXT:    %[[C:.*]] = nn.concat %[[R]], %[[B]] {axis = 1 : i64} : {{.*}} -> tensor<1x4x4x4x!quant.uniform<i8:f32, 0.031496062874794006>>
// CHECK-NEXT:    %[[Y:.*]] = nn.relu %[[C]] : tensor<1x4x4x4x!quant.uniform<i8:f32, 0.031496062874794006>>
// CHECK-NEXT:    quant.dcast %[[Y]]
func.func @concat(%x: tensor<1x2x4x4xf32> {quant.range = array<f64: -1.0, 1.0>}) -> tensor<1x4x4x4xf32> {
  %w = nn.constant dense<0.5> : tensor<2x2x1x1xf32>
  %v = nn.constant dense<-2.0> : tensor<2x2x1x1xf32>
  %a = nn.conv2d %x, %w {act = "relu", quant.range = array<f64: 0.0, 1.0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %b = nn.conv2d %x, %v {quant.range = array<f64: -4.0, 4.0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c = nn.concat %a, %b {axis = 1 : i64, quant.range = array<f64: -4.0, 4.0>} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32>
  %r = nn.relu %c {quant.range = array<f64: 0.0, 4.0>} : tensor<1x4x4x4xf32>
  func.return %r : tensor<1x4x4x4xf32>
}
