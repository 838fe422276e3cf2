// Verifier errors of the n-D spatial nn ops (dialects/nn/spatial.py), in module order.

func.func @window_lengths(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x2x10x10xf32> {
  %0 = nn.conv_transpose %x, %w {strides = array<i64: 1>} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x2x10x10xf32> // expected-error {{strides and dilations and}}
  func.return %0 : tensor<1x2x10x10xf32>
}

// -----

func.func @window_values(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x2x10x10xf32> {
  %0 = nn.conv_transpose %x, %w {strides = array<i64: 0, 1>} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x2x10x10xf32> // expected-error {{expects strides, dilations >= 1 and pads >= 0, got}}
  func.return %0 : tensor<1x2x10x10xf32>
}

// -----

func.func @conv_transpose_rank(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3xf32>) -> tensor<1x2x10x10xf32> {
  %0 = nn.conv_transpose %x, %w : (tensor<1x4x8x8xf32>, tensor<4x2x3xf32>) -> tensor<1x2x10x10xf32> // expected-error {{nn.conv_transpose expects input (N, C, spatial...) and weight (C, F/groups, kernel...) of one rank >= 3, got}}
  func.return %0 : tensor<1x2x10x10xf32>
}

// -----

func.func @conv_transpose_channels(%x: tensor<1x4x8x8xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32> {
  %0 = nn.conv_transpose %x, %w : (tensor<1x4x8x8xf32>, tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32> // expected-error {{nn.conv_transpose expects weight channels = input channels, divisible by groups 1, got}}
  func.return %0 : tensor<1x2x10x10xf32>
}

// -----

func.func @conv_transpose_bias(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x2x10x10xf32> {
  %0 = nn.conv_transpose %x, %w, %b : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>, tensor<3xf32>) -> tensor<1x2x10x10xf32> // expected-error {{nn.conv_transpose expects bias of shape 2, got 3}}
  func.return %0 : tensor<1x2x10x10xf32>
}

// -----

func.func @pool_mode(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> {
  %0 = nn.pool %x {mode = "min", kernel = array<i64: 2, 2, 2>} : (tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> // expected-error {{nn.pool expects mode in ['max', 'avg', 'lp']}}
  func.return %0 : tensor<1x2x3x3x3xf32>
}

// -----

func.func @pool_kernel(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> {
  %0 = nn.pool %x {mode = "max", kernel = array<i64: 2, 2>} : (tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> // expected-error {{nn.pool expects a kernel of 3 sizes >= 1 for 1x2x4x4x4, got [2, 2]}}
  func.return %0 : tensor<1x2x3x3x3xf32>
}

// -----

func.func @pool_fit(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> {
  %0 = nn.pool %x {mode = "max", kernel = array<i64: 2, 2, 2>, dilations = array<i64: 4, 1, 1>} : (tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32> // expected-error {{nn.pool expects the window [2, 2, 2] to fit 1x2x4x4x4}}
  func.return %0 : tensor<1x2x3x3x3xf32>
}

// -----

func.func @resize_lengths(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> {
  %0 = nn.resize %x {sizes = array<i64: 1, 4, 16, 16>, scales = array<f64: 2.0, 2.0>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> // expected-error {{nn.resize expects 4 sizes and scales and 8 roi values for 1x4x8x8, got 4, 2 and 8}}
  func.return %0 : tensor<1x4x16x16xf32>
}

// -----

func.func @resize_mode(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> {
  %0 = nn.resize %x {sizes = array<i64: 1, 4, 16, 16>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>, mode = "area"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> // expected-error {{nn.resize expects mode in ['nearest', 'linear', 'cubic'], got 'area'}}
  func.return %0 : tensor<1x4x16x16xf32>
}

// -----

func.func @resize_scales(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> {
  %0 = nn.resize %x {sizes = array<i64: 1, 4, 16, 16>, scales = array<f64: 1.0, 0.0, 2.0, 2.0>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32> // expected-error {{nn.resize expects positive scales, got}}
  func.return %0 : tensor<1x4x16x16xf32>
}

// -----

func.func @lrn_size(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %0 = nn.lrn %x {size = 0 : i64} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> // expected-error {{nn.lrn expects rank >= 3 and size >= 1, got}}
  func.return %0 : tensor<1x4x8x8xf32>
}

// -----

func.func @einsum_terms(%a: tensor<2x3xf32>) -> tensor<2xf32> {
  %0 = nn.einsum %a {equation = "ijk->i"} : (tensor<2x3xf32>) -> tensor<2xf32> // expected-error {{nn.einsum expects an equation with one term per operand matching its rank, got 'ijk->i' for 2x3}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @einsum_sizes(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  %0 = nn.einsum %a, %b {equation = "ij,jk->ik"} : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32> // expected-error {{nn.einsum expects one size per letter, got 'j' = 3 and 4}}
  func.return %0 : tensor<2x5xf32>
}

// -----

func.func @einsum_output(%a: tensor<2x3xf32>) -> tensor<2xf32> {
  %0 = nn.einsum %a {equation = "ij->z"} : (tensor<2x3xf32>) -> tensor<2xf32> // expected-error {{nn.einsum expects output letters that occur in an input, got 'ij->z'}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @bitcast_width(%x: tensor<3xf32>) -> tensor<3xi64> {
  %0 = nn.bitcast %x : (tensor<3xf32>) -> tensor<3xi64> // expected-error {{nn.bitcast expects element types of one bit width, got f32 and i64}}
  func.return %0 : tensor<3xi64>
}
