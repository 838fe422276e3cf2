// The n-D spatial nn ops (dialects/nn/spatial.py): every op parses, verifies and prints in
// its custom format (and round-trips).

// CHECK-LABEL: func.func @spatial(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>, %b: tensor<4xf32>, %v: tensor<1x2x4x4x4xf32>) -> (tensor<1x4x16x16xf32>, tensor<1x2x3x3x3xf32>, tensor<1x4x16x16xf32>, tensor<1x4x8x8xf32>) {
// CHECK-NEXT:    %0 = nn.conv_transpose %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, output_padding = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT:    %1 = nn.pool %v {mode = "avg", kernel = array<i64: 2, 2, 2>, dilations = array<i64: 1, 1, 1>, count_include_pad = 1 : i64} : (tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32>
// CHECK-NEXT:    %2 = nn.resize %x {sizes = array<i64: 1, 4, 16, 16>, scales = array<f64: 1.000000e+00, 1.000000e+00, 2.000000e+00, 2.000000e+00>, mode = "linear", coordinate_transformation_mode = "align_corners"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT:    %3 = nn.lrn %x {size = 3 : i64, alpha = 2.000000e-04 : f64} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:    func.return %0, %1, %2, %3 : tensor<1x4x16x16xf32>, tensor<1x2x3x3x3xf32>, tensor<1x4x16x16xf32>, tensor<1x4x8x8xf32>
func.func @spatial(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x3x3xf32>, %b: tensor<4xf32>, %v: tensor<1x2x4x4x4xf32>) -> (tensor<1x4x16x16xf32>, tensor<1x2x3x3x3xf32>, tensor<1x4x16x16xf32>, tensor<1x4x8x8xf32>) {
  %0 = nn.conv_transpose %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, output_padding = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x16x16xf32>
  %1 = nn.pool %v {mode = "avg", kernel = array<i64: 2, 2, 2>, dilations = array<i64: 1, 1, 1>, count_include_pad = 1 : i64} : (tensor<1x2x4x4x4xf32>) -> tensor<1x2x3x3x3xf32>
  %2 = nn.resize %x {sizes = array<i64: 1, 4, 16, 16>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>, mode = "linear", coordinate_transformation_mode = "align_corners"} : (tensor<1x4x8x8xf32>) -> tensor<1x4x16x16xf32>
  %3 = nn.lrn %x {size = 3 : i64, alpha = 0.0002 : f64} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  func.return %0, %1, %2, %3 : tensor<1x4x16x16xf32>, tensor<1x2x3x3x3xf32>, tensor<1x4x16x16xf32>, tensor<1x4x8x8xf32>
}

// -----

// CHECK-LABEL: func.func @einsum(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
// CHECK-NEXT:    %0 = nn.einsum %a, %b {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
// CHECK-NEXT:    func.return %0 : tensor<2x3x5xf32>
func.func @einsum(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
  %0 = nn.einsum %a, %b {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
  func.return %0 : tensor<2x3x5xf32>
}

// -----

// CHECK-LABEL: func.func @bitcast(%x: tensor<3xf32>) -> tensor<3xi32> {
// CHECK-NEXT:    %0 = nn.bitcast %x : (tensor<3xf32>) -> tensor<3xi32>
// CHECK-NEXT:    func.return %0 : tensor<3xi32>
func.func @bitcast(%x: tensor<3xf32>) -> tensor<3xi32> {
  %0 = nn.bitcast %x : (tensor<3xf32>) -> tensor<3xi32>
  func.return %0 : tensor<3xi32>
}
