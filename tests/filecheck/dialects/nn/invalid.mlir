// One case per verifier branch of dialects/nn.py: each case must fail with the message
// in its `expected-error {{...}}` (a substring), reported on the op's line (or on the line
// `@+N`/`@-N` away). Keep the cases in the order of the verifiers in nn.py.

// -----

// #nn.sparsity: the N:M pattern must have 0 < N < M.
// expected-error@+1 {{#nn.sparsity expects 'unstructured' or "N:M" with 0 < N < M, got "4:2"}}
%w = nn.constant #nn.weight<"w"> {nn.sparsity = #nn.sparsity<"4:2", axis = 1>} : tensor<4x8xf32>

// -----

// expected-error@+1 {{#nn.sparsity expects an N:M pattern to name its axis >= 0}}
%w = nn.constant #nn.weight<"w"> {nn.sparsity = #nn.sparsity<"2:4", axis = -1>} : tensor<4x8xf32>

// -----

// expected-error@+1 {{#nn.sparsity expects stride >= 1, got 0}}
%w = nn.constant #nn.weight<"w"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1, stride = 0>} : tensor<4x8xf32>

// -----

// expected-error@+1 {{#nn.sparsity expects a density in [0, 1], got 1.5}}
%w = nn.constant #nn.weight<"w"> {nn.sparsity = #nn.sparsity<unstructured, density = 1.5>} : tensor<4x8xf32>

// -----

// Operands must be tensors (the IRDL constraint, checked before the shape functions, so
// shape_of's "expected a ranked tensor" branch is not reachable from text).
func.func @not_a_tensor(%x: i32) -> i32 {
  %0 = "nn.relu"(%x) : (i32) -> i32 // expected-error {{operand 'input' at position 0 does not verify}}
  func.return %0 : i32
}

// -----

// nn values are statically shaped (a `?` dimension would reach the shape functions as a
// huge negative number).
func.func @dynamic(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %0 = nn.relu %x : tensor<?x4xf32> // expected-error {{expected a statically shaped tensor, got tensor<?x4xf32>}}
  func.return %0 : tensor<?x4xf32>
}

// -----

// nn has no empty tensors: every operand and result has at least one element.
func.func @empty(%x: tensor<0x4xf32>) -> tensor<0x4xf32> {
  %0 = nn.relu %x : tensor<0x4xf32> // expected-error {{nn.relu expects tensors with at least one element, got operand #0 of shape 0x4}}
  func.return %0 : tensor<0x4xf32>
}

// -----

func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) -> tensor<2x4xf32> {
  %0 = nn.add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x4xf32> // expected-error {{nn.add expects broadcast-compatible operands, got 2x3 and 4}}
  func.return %0 : tensor<2x4xf32>
}

// -----

func.func @axis(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.softmax %x {axis = 2 : i64} : tensor<2x3xf32> // expected-error {{nn.softmax expects axis in [-2, 2), got 2}}
  func.return %0 : tensor<2x3xf32>
}

// -----

// The declared result type must equal the inferred one.
func.func @result_shape(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<3x2xf32> {
  %0 = nn.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x2xf32> // expected-error {{nn.add expects result shape 2x3, got 3x2}}
  func.return %0 : tensor<3x2xf32>
}

// -----

// expected-error@+1 {{nn.constant expects inline data of shape 3, got 2}}
%c = "nn.constant"() <{value = dense<[1.0, 2.0]> : tensor<2xf32>}> : () -> tensor<3xf32>

// -----

func.func @gelu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.gelu %x {approximate = "fast"} : tensor<4xf32> // expected-error {{nn.gelu expects approximate in ['none', 'tanh'], got 'fast'}}
  func.return %0 : tensor<4xf32>
}

// -----

// Only parameter-free activations can be fused.
func.func @act(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.add %a, %a {act = "gelu"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> // expected-error {{nn.add expects act in ['hardswish', 'relu', 'relu6', 'sigmoid', 'silu', 'tanh'], got 'gelu'}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @conv_rank(%x: tensor<3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = nn.conv2d %x, %w : (tensor<3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> // expected-error {{nn.conv2d expects a rank-4 input (NCHW) and weight (FCHW), got input 3x8x8 and weight 4x3x3x3}}
  func.return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_attr_lengths(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = nn.conv2d %x, %w {strides = array<i64: 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> // expected-error {{nn.conv2d expects 2 strides, 4 pads and 2 dilations, got 1, 4 and 2}}
  func.return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_attr_ranges(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = nn.conv2d %x, %w {pads = array<i64: -1, 0, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> // expected-error {{nn.conv2d expects strides, dilations, groups >= 1 and pads >= 0, got strides [1, 1], dilations [1, 1], pads [-1, 0, 0, 0], groups 1}}
  func.return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_channels(%x: tensor<1x4x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = nn.conv2d %x, %w : (tensor<1x4x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> // expected-error {{nn.conv2d expects weight input channels × groups = input channels, got weight 4x3x3x3 (C/groups = 3), groups 1, input 1x4x8x8}}
  func.return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_bias(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = nn.conv2d %x, %w, %b : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<3xf32>) -> tensor<1x4x6x6xf32> // expected-error {{nn.conv2d expects bias of shape 4, got 3}}
  func.return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_window(%x: tensor<1x3x2x2xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x1x1xf32> {
  %0 = nn.conv2d %x, %w : (tensor<1x3x2x2xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x1x1xf32> // expected-error {{nn.conv2d expects the kernel 3x3 to fit the padded input 1x3x2x2, got an empty output 0x0}}
  func.return %0 : tensor<1x4x1x1xf32>
}

// -----

func.func @matmul_rank(%a: tensor<f32>, %b: tensor<4xf32>) -> tensor<f32> {
  %0 = nn.matmul %a, %b : (tensor<f32>, tensor<4xf32>) -> tensor<f32> // expected-error {{nn.matmul expects operands of rank >= 1}}
  func.return %0 : tensor<f32>
}

// -----

func.func @matmul_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  %0 = nn.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32> // expected-error {{nn.matmul expects lhs columns = rhs rows, got 2x3 and 4x5}}
  func.return %0 : tensor<2x5xf32>
}

// -----

func.func @matmul_batch(%a: tensor<2x2x3xf32>, %b: tensor<4x3x5xf32>) -> tensor<4x2x5xf32> {
  %0 = nn.matmul %a, %b : (tensor<2x2x3xf32>, tensor<4x3x5xf32>) -> tensor<4x2x5xf32> // expected-error {{nn.matmul expects broadcast-compatible operands, got 2 and 4}}
  func.return %0 : tensor<4x2x5xf32>
}

// -----

func.func @linear_weight(%x: tensor<1x64xf32>, %w: tensor<10x32xf32>) -> tensor<1x10xf32> {
  %0 = nn.linear %x, %w : (tensor<1x64xf32>, tensor<10x32xf32>) -> tensor<1x10xf32> // expected-error {{nn.linear expects weight [out, 64], got input 1x64 and weight 10x32}}
  func.return %0 : tensor<1x10xf32>
}

// -----

func.func @linear_bias(%x: tensor<1x64xf32>, %w: tensor<10x64xf32>, %b: tensor<64xf32>) -> tensor<1x10xf32> {
  %0 = nn.linear %x, %w, %b : (tensor<1x64xf32>, tensor<10x64xf32>, tensor<64xf32>) -> tensor<1x10xf32> // expected-error {{nn.linear expects bias of shape 10, got 64}}
  func.return %0 : tensor<1x10xf32>
}

// -----

func.func @batchnorm_rank(%x: tensor<4xf32>, %c: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.batchnorm %x, %c, %c, %c, %c : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> // expected-error {{nn.batchnorm expects rank >= 2, got 4}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @batchnorm_params(%x: tensor<1x4x2x2xf32>, %c: tensor<4xf32>, %v: tensor<3xf32>) -> tensor<1x4x2x2xf32> {
  %0 = nn.batchnorm %x, %c, %c, %c, %v : (tensor<1x4x2x2xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<3xf32>) -> tensor<1x4x2x2xf32> // expected-error {{nn.batchnorm expects var of shape 4 (channels), got 3}}
  func.return %0 : tensor<1x4x2x2xf32>
}

// -----

func.func @layernorm_scale(%x: tensor<8x16xf32>, %g: tensor<8xf32>) -> tensor<8x16xf32> {
  %0 = nn.layernorm %x, %g : (tensor<8x16xf32>, tensor<8xf32>) -> tensor<8x16xf32> // expected-error {{nn.layernorm expects broadcast-compatible operands, got 8 and 16}}
  func.return %0 : tensor<8x16xf32>
}

// -----

func.func @layernorm_bias_shape(%x: tensor<8x16xf32>, %g: tensor<16xf32>, %b: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %0 = nn.layernorm %x, %g, %b {axis = 1 : i64} : (tensor<8x16xf32>, tensor<16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32> // expected-error {{nn.layernorm expects bias broadcastable to 16, got 8x16}}
  func.return %0 : tensor<8x16xf32>
}

// -----

func.func @pool_rank(%x: tensor<4x8x8xf32>) -> tensor<4x4x4xf32> {
  %0 = nn.maxpool %x {kernel = array<i64: 2, 2>} : (tensor<4x8x8xf32>) -> tensor<4x4x4xf32> // expected-error {{nn.maxpool expects a rank-4 input (NCHW), got 4x8x8}}
  func.return %0 : tensor<4x4x4xf32>
}

// -----

func.func @pool_attr_lengths(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32> {
  %0 = nn.avgpool %x {kernel = array<i64: 2>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32> // expected-error {{nn.avgpool expects 2 kernel sizes, 2 strides and 4 pads, got 1, 2 and 4}}
  func.return %0 : tensor<1x4x4x4xf32>
}

// -----

func.func @pool_attr_ranges(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32> {
  %0 = nn.maxpool %x {kernel = array<i64: 2, 2>, pads = array<i64: 2, 0, 0, 0>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32> // expected-error {{nn.maxpool expects kernel, strides >= 1 and 0 <= pads < kernel, got kernel [2, 2], strides [1, 1], pads [2, 0, 0, 0]}}
  func.return %0 : tensor<1x4x4x4xf32>
}

// -----

func.func @pool_window(%x: tensor<1x4x2x2xf32>) -> tensor<1x4x1x1xf32> {
  %0 = nn.maxpool %x {kernel = array<i64: 3, 3>} : (tensor<1x4x2x2xf32>) -> tensor<1x4x1x1xf32> // expected-error {{nn.maxpool expects the window 3x3 to fit the input 1x4x2x2}}
  func.return %0 : tensor<1x4x1x1xf32>
}

// -----

func.func @global_pool_rank(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
  %0 = nn.global_avg_pool %x : (tensor<4x8xf32>) -> tensor<4x1xf32> // expected-error {{nn.global_avg_pool expects rank >= 3, got 4x8}}
  func.return %0 : tensor<4x1xf32>
}

// -----

func.func @reshape(%x: tensor<2x3xf32>) -> tensor<4xf32> {
  %0 = nn.reshape %x : (tensor<2x3xf32>) -> tensor<4xf32> // expected-error {{nn.reshape expects the same number of elements, got 2x3 to 4}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @flatten(%x: tensor<2x3xf32>) -> tensor<6x1xf32> {
  %0 = nn.flatten %x {axis = 3 : i64} : (tensor<2x3xf32>) -> tensor<6x1xf32> // expected-error {{nn.flatten expects axis in [-2, 2], got 3}}
  func.return %0 : tensor<6x1xf32>
}

// -----

func.func @transpose(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = nn.transpose %x {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32> // expected-error {{nn.transpose expects perm to be a permutation of 0..1, got [0, 0]}}
  func.return %0 : tensor<3x2xf32>
}

// -----

func.func @concat_empty() -> tensor<1xf32> {
  %0 = nn.concat {axis = 0 : i64} : () -> tensor<1xf32> // expected-error {{nn.concat expects at least one input}}
  func.return %0 : tensor<1xf32>
}

// -----

func.func @concat_shapes(%a: tensor<1x2xf32>, %b: tensor<2x3xf32>) -> tensor<1x5xf32> {
  %0 = nn.concat %a, %b {axis = 1 : i64} : (tensor<1x2xf32>, tensor<2x3xf32>) -> tensor<1x5xf32> // expected-error {{nn.concat expects inputs equal except on axis 1, got input 0 1x2 and input 1 2x3}}
  func.return %0 : tensor<1x5xf32>
}

// -----

func.func @slice_lengths(%x: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %0 = nn.slice %x {starts = array<i64: 0, 0>, ends = array<i64: 2>, axes = array<i64: 1>} : (tensor<1x4xf32>) -> tensor<1x2xf32> // expected-error {{nn.slice expects starts, ends, axes and steps of equal length, got 2, 1, 1 and 1}}
  func.return %0 : tensor<1x2xf32>
}

// -----

func.func @slice_step(%x: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %0 = nn.slice %x {starts = array<i64: 0>, ends = array<i64: 2>, axes = array<i64: 1>, steps = array<i64: 0>} : (tensor<1x4xf32>) -> tensor<1x2xf32> // expected-error {{nn.slice expects non-zero steps, got 0}}
  func.return %0 : tensor<1x2xf32>
}

// -----

func.func @split(%x: tensor<1x4xf32>) -> (tensor<1x2xf32>, tensor<1x1xf32>) {
  %0, %1 = nn.split %x {axis = 1 : i64, sizes = array<i64: 2, 1>} : (tensor<1x4xf32>) -> (tensor<1x2xf32>, tensor<1x1xf32>) // expected-error {{nn.split expects positive sizes summing to 4, got [2, 1]}}
  func.return %0, %1 : tensor<1x2xf32>, tensor<1x1xf32>
}

// -----

func.func @gather(%t: tensor<10x4xf32>, %i: tensor<3xi64>) -> tensor<3x4xf32> {
  %0 = nn.gather %t, %i {axis = 2 : i64} : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<3x4xf32> // expected-error {{nn.gather expects axis in [-2, 2), got 2}}
  func.return %0 : tensor<3x4xf32>
}

// -----

func.func @gather_float_indices(%t: tensor<10x4xf32>, %i: tensor<3xf32>) -> tensor<3x4xf32> {
  %0 = nn.gather %t, %i : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32> // expected-error {{nn.gather expects integer indices, got tensor<3xf32>}}
  func.return %0 : tensor<3x4xf32>
}

// -----

func.func @reduce_mean(%x: tensor<4x10xf32>) -> tensor<4x1xf32> {
  %0 = nn.reduce_mean %x {axes = array<i64: 2>} : (tensor<4x10xf32>) -> tensor<4x1xf32> // expected-error {{nn.reduce_mean expects axis in [-2, 2), got 2}}
  func.return %0 : tensor<4x1xf32>
}

// -----

func.func @rms_norm(%x: tensor<1x4x8xf32>, %g: tensor<4xf32>) -> tensor<1x4x8xf32> {
  %0 = nn.rms_norm %x, %g : (tensor<1x4x8xf32>, tensor<4xf32>) -> tensor<1x4x8xf32> // expected-error {{nn.rms_norm expects scale of shape 8, got 4}}
  func.return %0 : tensor<1x4x8xf32>
}

// -----

func.func @rotary_rank(%x: tensor<2x4x7xf32>, %c: tensor<2x4x3xf32>) -> tensor<2x4x7xf32> {
  %0 = nn.rotary %x, %c, %c : (tensor<2x4x7xf32>, tensor<2x4x3xf32>, tensor<2x4x3xf32>) -> tensor<2x4x7xf32> // expected-error {{nn.rotary expects input [batch, heads, seq, dim] with an even dim, got 2x4x7}}
  func.return %0 : tensor<2x4x7xf32>
}

// -----

func.func @rotary_table(%x: tensor<1x2x4x8xf32>, %c: tensor<1x4x3xf32>, %s: tensor<1x4x4xf32>) -> tensor<1x2x4x8xf32> {
  %0 = nn.rotary %x, %c, %s : (tensor<1x2x4x8xf32>, tensor<1x4x3xf32>, tensor<1x4x4xf32>) -> tensor<1x2x4x8xf32> // expected-error {{nn.rotary expects cos of shape 1x4x4 (batch, seq, dim/2), got 1x4x3}}
  func.return %0 : tensor<1x2x4x8xf32>
}

// -----

func.func @attention_rank(%q: tensor<2x3x8xf32>) -> tensor<2x3x8xf32> {
  %0 = nn.attention %q, %q, %q : (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32> // expected-error {{nn.attention expects rank-4 q, k, v [batch, heads, seq, dim], got 2x3x8, 2x3x8, 2x3x8}}
  func.return %0 : tensor<2x3x8xf32>
}

// -----

func.func @attention_kv(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x6x8xf32>) -> tensor<1x4x3x8xf32> {
  %0 = nn.attention %q, %k, %v : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x6x8xf32>) -> tensor<1x4x3x8xf32> // expected-error {{nn.attention expects k [B, Hkv, T, D] and v [B, Hkv, T, Dv] matching q [B, Hq, S, D], got q 1x4x3x8, k 1x2x5x8, v 1x2x6x8}}
  func.return %0 : tensor<1x4x3x8xf32>
}

// -----

func.func @attention_heads(%q: tensor<1x3x3x8xf32>, %k: tensor<1x2x5x8xf32>) -> tensor<1x3x3x8xf32> {
  %0 = nn.attention %q, %k, %k : (tensor<1x3x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x3x3x8xf32> // expected-error {{nn.attention expects query heads (3) a multiple of key/value heads (2)}}
  func.return %0 : tensor<1x3x3x8xf32>
}

// -----

func.func @attention_causal(%q: tensor<1x2x6x8xf32>, %k: tensor<1x2x5x8xf32>) -> tensor<1x2x6x8xf32> {
  %0 = nn.attention %q, %k, %k {causal = 1 : i64} : (tensor<1x2x6x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x6x8xf32> // expected-error {{nn.attention (causal) expects at most as many queries (6) as keys (5)}}
  func.return %0 : tensor<1x2x6x8xf32>
}

// -----

// Training ops (nn/gradients.py, nn/losses.py, nn/fake_quant.py).
func.func @activation_grad_fn(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.activation_grad %x, %x {fn = "softmax"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> // expected-error {{nn.activation_grad expects fn in ['relu'}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @sum_to(%x: tensor<4x1xf32>) -> tensor<4x3xf32> {
  %0 = nn.sum_to %x : (tensor<4x1xf32>) -> tensor<4x3xf32> // expected-error {{nn.sum_to expects a result that broadcasts to 4x1, got 4x3}}
  func.return %0 : tensor<4x3xf32>
}

// -----

func.func @conv2d_input_grad(%dy: tensor<1x8x4x4xf32>, %w: tensor<8x2x3x3xf32>) -> tensor<1x2x8x8xf32> {
  %0 = nn.conv2d_input_grad %dy, %w : (tensor<1x8x4x4xf32>, tensor<8x2x3x3xf32>) -> tensor<1x2x8x8xf32> // expected-error {{nn.conv2d_input_grad expects a gradient of the conv2d output shape 1x8x6x6, got 1x8x4x4}}
  func.return %0 : tensor<1x2x8x8xf32>
}

// -----

func.func @cross_entropy_shapes(%l: tensor<2x10xf32>, %y: tensor<3xi64>) -> tensor<f32> {
  %0 = nn.cross_entropy %l, %y : (tensor<2x10xf32>, tensor<3xi64>) -> tensor<f32> // expected-error {{nn.cross_entropy expects logits [batch, classes] and labels [batch], got 2x10 and 3}}
  func.return %0 : tensor<f32>
}

// -----

func.func @cross_entropy_grad_dloss(%l: tensor<2x10xf32>, %y: tensor<2xi64>, %d: tensor<1xf32>) -> tensor<2x10xf32> {
  %0 = nn.cross_entropy_grad %l, %y, %d : (tensor<2x10xf32>, tensor<2xi64>, tensor<1xf32>) -> tensor<2x10xf32> // expected-error {{nn.cross_entropy_grad expects a scalar upstream gradient, got 1}}
  func.return %0 : tensor<2x10xf32>
}

// -----

func.func @cross_entropy_float_labels(%l: tensor<2x10xf32>, %y: tensor<2xf32>) -> tensor<f32> {
  %0 = nn.cross_entropy %l, %y : (tensor<2x10xf32>, tensor<2xf32>) -> tensor<f32> // expected-error {{nn.cross_entropy expects integer labels, got tensor<2xf32>}}
  func.return %0 : tensor<f32>
}

// -----

func.func @label_smoothing(%l: tensor<2x10xf32>, %y: tensor<2xi64>) -> tensor<f32> {
  %0 = nn.cross_entropy %l, %y {label_smoothing = 1.5 : f64} : (tensor<2x10xf32>, tensor<2xi64>) -> tensor<f32> // expected-error {{nn.cross_entropy expects label_smoothing in [0, 1), got 1.5}}
  func.return %0 : tensor<f32>
}

// -----

func.func @kl_div_shapes(%s: tensor<2x10xf32>, %t: tensor<2x9xf32>) -> tensor<f32> {
  %0 = nn.kl_div %s, %t : (tensor<2x10xf32>, tensor<2x9xf32>) -> tensor<f32> // expected-error {{nn.kl_div expects student and teacher logits of one shape [batch, classes], got 2x10 and 2x9}}
  func.return %0 : tensor<f32>
}

// -----

func.func @kl_div_temperature(%s: tensor<2x10xf32>) -> tensor<f32> {
  %0 = nn.kl_div %s, %s {temperature = 0.0 : f64} : (tensor<2x10xf32>, tensor<2x10xf32>) -> tensor<f32> // expected-error {{nn.kl_div expects temperature > 0, got 0.0}}
  func.return %0 : tensor<f32>
}

// -----

func.func @mse_shapes(%p: tensor<2x10xf32>, %t: tensor<2x1xf32>) -> tensor<f32> {
  %0 = nn.mse %p, %t : (tensor<2x10xf32>, tensor<2x1xf32>) -> tensor<f32> // expected-error {{nn.mse expects prediction and target of one shape, got 2x10 and 2x1}}
  func.return %0 : tensor<f32>
}

// -----

func.func @fake_quant_mode(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.fake_quant %x {mode = "output", bits = 8 : i64} : tensor<4xf32> // expected-error {{nn.fake_quant expects mode in ['weight', 'activation'], got 'output'}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @fake_quant_bits(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.fake_quant %x {mode = "weight", bits = 1 : i64} : tensor<4xf32> // expected-error {{nn.fake_quant expects 2 <= bits <= 16, got 1}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @fake_quant_activation_scale(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.fake_quant %x {mode = "activation", bits = 8 : i64} : tensor<4xf32> // expected-error {{nn.fake_quant in activation mode expects a scale and a zero_point}}
  func.return %0 : tensor<4xf32>
}

// -----

func.func @reduce_grad_fn(%x: tensor<2x3xf32>, %y: tensor<2xf32>) -> tensor<2x3xf32> {
  %0 = nn.reduce_grad %x, %y, %y {fn = "reduce_mean", axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x3xf32> // expected-error {{nn.reduce_grad expects fn in ['reduce_sum'}}
  func.return %0 : tensor<2x3xf32>
}
