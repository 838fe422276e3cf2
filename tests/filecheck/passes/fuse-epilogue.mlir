// fuse-epilogue: a PE layer takes the point-wise layers after it into its output path
// (`epilogue [...]`, one entry per fused layer), its extra operands (the residual %x, the
// bias %bv) appended to its inputs; the intermediates disappear and the activations are
// placed again (peak 13312 -> 9216 bytes).

// CHECK-LABEL: func.func @main
// CHECK-SAME:    accel.peak_bytes = 9216 : i64
// CHECK:         %[[X:.*]] = accel.input %x at 17728
// CHECK:         %[[T:.*]] = accel.input %t at 25920
// CHECK:         %[[Y:.*]] = accel.layer "conv2d_0" "nn.conv2d"(%[[X]], %w, %b, %[[X]]) at 21824 on "pe"
// CHECK-SAME:      epilogue [{kind = "nn.add", label = "add_0", operands = array<i64: -1, 0>, in = tensor<1x16x8x8xf32>, out = tensor<1x16x8x8xf32>, params = {act = "relu"}}]
// CHECK:         %[[G:.*]] = accel.layer "matmul_0" "nn.matmul"(%[[T]], %v, %bv) at 17728 on "pe"
// CHECK-SAME:      epilogue [{kind = "nn.add", label = "add_1", operands = array<i64: -1, 0>, in = tensor<1x8x64xf32>, out = tensor<1x8x64xf32>}, {kind = "nn.gelu", label = "gelu_0", operands = array<i64: -1>, in = tensor<1x8x64xf32>, out = tensor<1x8x64xf32>, params = {approximate = "none"}}]
// CHECK-NEXT:    func.return %[[Y]], %[[G]]
// CHECK-NOT:     "vector"
func.func @main(%x: tensor<1x16x8x8xf32>, %t: tensor<1x8x32xf32>) -> (tensor<1x16x8x8xf32>, tensor<1x8x64xf32>) attributes {accel.weight_bytes = 17728 : i64, accel.activation_base = 17728 : i64, accel.peak_bytes = 13312 : i64} {
  %x_1 = accel.input %x at 17728 : tensor<1x16x8x8xf32>
  %t_1 = accel.input %t at 30016 : tensor<1x8x32xf32>
  %w = accel.weight dense<5.000000e-01> : tensor<16x16x3x3xf32> at 0 : tensor<16x16x3x3xf32>
  %b = accel.weight dense<2.500000e-01> : tensor<16xf32> at 9216 : tensor<16xf32>
  %c = accel.layer "conv2d_0" "nn.conv2d"(%x_1, %w, %b) at 21824 on "pe" tiles <n = 1, g = 1, f = 16, oh = 8, ow = 8, c = 16> params {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x8x8xf32>, tensor<16x16x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32>
  %y = accel.layer "add_0" "nn.add"(%c, %x_1) at 25920 on "vector" tiles <d0 = 1, d1 = 16, d2 = 8, d3 = 8> params {act = "relu"} : (tensor<1x16x8x8xf32>, tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
  %v = accel.weight dense<1.250000e-01> : tensor<32x64xf32> at 9280 : tensor<32x64xf32>
  %bv = accel.weight dense<5.000000e-01> : tensor<64xf32> at 17472 : tensor<64xf32>
  %m = accel.layer "matmul_0" "nn.matmul"(%t_1, %v) at 17728 on "pe" tiles <b = 1, m = 8, n = 64, k = 32> params {} : (tensor<1x8x32xf32>, tensor<32x64xf32>) -> tensor<1x8x64xf32>
  %a = accel.layer "add_1" "nn.add"(%m, %bv) at 19776 on "vector" tiles <d0 = 1, d1 = 8, d2 = 64> params {} : (tensor<1x8x64xf32>, tensor<64xf32>) -> tensor<1x8x64xf32>
  %g = accel.layer "gelu_0" "nn.gelu"(%a) at 17728 on "vector" tiles <d0 = 1, d1 = 8, d2 = 64> params {approximate = "none"} : (tensor<1x8x64xf32>) -> tensor<1x8x64xf32>
  func.return %y, %g : tensor<1x16x8x8xf32>, tensor<1x8x64xf32>
}

// -----

// A vector-unit producer (softmax, its axis whole in each tile of 3 rows) takes the
// point-wise layer after it: the unit chains the mul on each tile, its per-column
// operand %c appended to the inputs; the intermediate disappears (the peak, 512 bytes,
// is now the input and the result).

// CHECK-LABEL: func.func @vec
// CHECK-SAME:    accel.peak_bytes = 512 : i64
// CHECK:         %[[P:.*]] = accel.layer "softmax_0" "nn.softmax"(%{{.*}}, %c) at {{[0-9]+}} on "vector" tiles <d0 = 4 step 3> params {axis = -1 : i64}
// CHECK-SAME:      epilogue [{kind = "nn.mul", label = "mul_0", operands = array<i64: -1, 0>, in = tensor<4x16xf32>, out = tensor<4x16xf32>}] : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
// CHECK-NEXT:    func.return %[[P]]
func.func @vec(%t: tensor<4x16xf32>) -> tensor<4x16xf32> attributes {accel.weight_bytes = 64 : i64, accel.activation_base = 64 : i64, accel.peak_bytes = 512 : i64} {
  %t_1 = accel.input %t at 64 : tensor<4x16xf32>
  %c = accel.weight dense<5.000000e-01> : tensor<16xf32> at 0 : tensor<16xf32>
  %s = accel.layer "softmax_0" "nn.softmax"(%t_1) at 320 on "vector" tiles <d0 = 4 step 3> params {axis = -1 : i64} : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %p = accel.layer "mul_0" "nn.mul"(%s, %c) at 64 on "vector" tiles <d0 = 4, d1 = 16> params {} : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  func.return %p : tensor<4x16xf32>
}

// -----

// A transpose after the chain (through the view that split the heads) becomes the output
// path's layout stage, last; the one-operand qcast after it becomes a stage before it (a
// cast commutes with a permutation). The matmul stores its int8 result transposed: no
// transpose, cast or view is left, and the fused layer's result is the transposed type.

// CHECK-LABEL: func.func @heads
// CHECK-SAME:    accel.peak_bytes = 192 : i64
// CHECK:         %[[Q:.*]] = accel.layer "matmul_0" "nn.matmul"(%{{.*}}, %w, %b) at {{[0-9]+}} on "pe"
// CHECK-SAME:      epilogue [{kind = "nn.add", label = "add_0", operands = array<i64: -1, 0>, in = tensor<1x4x8xf32>, out = tensor<1x4x8xf32>}, {kind = "quant.qcast", label = "qcast_0", operands = array<i64: -1>, in = tensor<1x4x8xf32>, out = tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>}, {kind = "nn.transpose", label = "transpose_0", operands = array<i64: -1>, in = tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>, out = tensor<1x2x4x4x!quant.uniform<i8:f32, 0.05>>, params = {perm = array<i64: 0, 2, 1, 3>, shape = array<i64: 1, 4, 2, 4>}}]
// CHECK-SAME:      -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.05>>
// CHECK-NEXT:    func.return %[[Q]]
// CHECK-NOT:     accel.view
func.func @heads(%t: tensor<1x4x8xf32>) -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.05>> attributes {accel.weight_bytes = 320 : i64, accel.activation_base = 320 : i64, accel.peak_bytes = 256 : i64} {
  %t_1 = accel.input %t at 320 : tensor<1x4x8xf32>
  %w = accel.weight dense<5.000000e-01> : tensor<8x8xf32> at 0 : tensor<8x8xf32>
  %b = accel.weight dense<2.500000e-01> : tensor<8xf32> at 256 : tensor<8xf32>
  %m = accel.layer "matmul_0" "nn.matmul"(%t_1, %w) at 448 on "pe" tiles <b = 1, m = 4, n = 8, k = 8> params {} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %a = accel.layer "add_0" "nn.add"(%m, %b) at 320 on "vector" tiles <d0 = 1, d1 = 4, d2 = 8> params {} : (tensor<1x4x8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
  %r = accel.view %a : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %tr = accel.layer "transpose_0" "nn.transpose"(%r) at 448 on "dma" tiles <d0 = 1, d1 = 2, d2 = 4, d3 = 4> params {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %q = accel.layer "qcast_0" "quant.qcast"(%tr) at 320 on "vector" tiles <d0 = 1, d1 = 2, d2 = 4, d3 = 4> params {} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4x!quant.uniform<i8:f32, 0.05>>
  func.return %q : tensor<1x2x4x4x!quant.uniform<i8:f32, 0.05>>
}

// -----

// A chain value with two uses, one a cast: the matmul applies the layernorm (its tile
// holds whole rows) and stores both its float result (for the add) and the cast's int8
// (`side = 0`, named by `accel.side`); the layernorm and qcast layers are gone.

// CHECK-LABEL: func.func @two
// CHECK:         %[[N:.*]] = accel.layer "matmul_0" "nn.matmul"(%{{.*}}, %w, %g, %b) at {{[0-9]+}} on "pe"
// CHECK-SAME:      epilogue [{kind = "nn.layernorm", label = "layernorm_0", operands = array<i64: -1, 0, 1>, in = tensor<1x4x8xf32>, out = tensor<1x4x8xf32>, params = {axis = -1 : i64, epsilon = 1.000000e-05 : f64}}, {kind = "quant.qcast", label = "qcast_0", operands = array<i64: -1>, in = tensor<1x4x8xf32>, out = tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>, side = 0 : i64}]
// CHECK-SAME:      -> tensor<1x4x8xf32>
// CHECK-NEXT:    %[[Q:.*]] = accel.side %[[N]], 0 at {{[0-9]+}} : (tensor<1x4x8xf32>) -> tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>
// CHECK-NEXT:    %[[R:.*]] = accel.layer "add_0" "nn.add"(%[[N]], %{{.*}})
// CHECK-NEXT:    func.return %[[R]], %[[Q]]
func.func @two(%t: tensor<1x4x8xf32>) -> (tensor<1x4x8xf32>, tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>) attributes {accel.weight_bytes = 384 : i64, accel.activation_base = 384 : i64, accel.peak_bytes = 448 : i64} {
  %t_1 = accel.input %t at 384 : tensor<1x4x8xf32>
  %w = accel.weight dense<5.000000e-01> : tensor<8x8xf32> at 0 : tensor<8x8xf32>
  %g = accel.weight dense<1.000000e+00> : tensor<8xf32> at 256 : tensor<8xf32>
  %b = accel.weight dense<2.500000e-01> : tensor<8xf32> at 320 : tensor<8xf32>
  %m = accel.layer "matmul_0" "nn.matmul"(%t_1, %w) at 512 on "pe" tiles <b = 1, m = 4, n = 8, k = 8> params {} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %n = accel.layer "layernorm_0" "nn.layernorm"(%m, %g, %b) at 640 on "vector" tiles <d0 = 1, d1 = 4> params {axis = -1 : i64, epsilon = 1.000000e-05 : f64} : (tensor<1x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x4x8xf32>
  %q = accel.layer "qcast_0" "quant.qcast"(%n) at 768 on "vector" tiles <d0 = 1, d1 = 4, d2 = 8> params {} : (tensor<1x4x8xf32>) -> tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>
  %r = accel.layer "add_0" "nn.add"(%n, %t_1) at 512 on "vector" tiles <d0 = 1, d1 = 4, d2 = 8> params {} : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
  func.return %r, %q : tensor<1x4x8xf32>, tensor<1x4x8x!quant.uniform<i8:f32, 0.05>>
}
