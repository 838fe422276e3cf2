// The table-driven nn families (dialects/nn/math.py, logic.py, reductions.py, indexing.py):
// every op parses, verifies and prints in its custom format (and round-trips).

// CHECK-LABEL: func.func @math(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>, tensor<2x3xi64>)
// CHECK-NEXT:    %0 = nn.abs %x : tensor<2x3xf32>
// CHECK-NEXT:    %1 = nn.log %0 : tensor<2x3xf32>
// CHECK-NEXT:    %2 = nn.sin %1 : tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.leaky_relu %2 {alpha = 1.000000e-01 : f64} : tensor<2x3xf32>
// CHECK-NEXT:    %4 = nn.selu %3 : tensor<2x3xf32>
// CHECK-NEXT:    %5 = nn.shrink %4 {bias = 5.000000e-01 : f64, lambd = 1.000000e+00 : f64} : tensor<2x3xf32>
// CHECK-NEXT:    %6 = nn.is_inf %5 {detect_negative = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %7 = nn.not %6 : tensor<2x3xi1>
// CHECK-NEXT:    %8 = nn.cast %5 : (tensor<2x3xf32>) -> tensor<2x3xi64>
// CHECK-NEXT:    func.return %5, %7, %8 : tensor<2x3xf32>, tensor<2x3xi1>, tensor<2x3xi64>
func.func @math(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>, tensor<2x3xi64>) {
  %0 = nn.abs %x : tensor<2x3xf32>
  %1 = nn.log %0 : tensor<2x3xf32>
  %2 = nn.sin %1 : tensor<2x3xf32>
  %3 = nn.leaky_relu %2 {alpha = 0.1 : f64} : tensor<2x3xf32>
  %4 = nn.selu %3 : tensor<2x3xf32>
  %5 = nn.shrink %4 {bias = 0.5 : f64, lambd = 1.0 : f64} : tensor<2x3xf32>
  %6 = nn.is_inf %5 {detect_negative = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xi1>
  %7 = nn.not %6 : tensor<2x3xi1>
  %8 = nn.cast %5 : (tensor<2x3xf32>) -> tensor<2x3xi64>
  func.return %5, %7, %8 : tensor<2x3xf32>, tensor<2x3xi1>, tensor<2x3xi64>
}

// -----

// CHECK-LABEL: func.func @logic(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %i: tensor<2x3xi64>) -> (tensor<2x3xf32>, tensor<2x3xi64>)
// CHECK-NEXT:    %0 = nn.less %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %1 = nn.equal %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %2 = nn.and %0, %1 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %3 = nn.max %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %4 = nn.mod %x, %y {fmod = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %5 = nn.where %2, %3, %4 : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %6 = nn.bit_shift %i, %i {direction = "LEFT"} : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
// CHECK-NEXT:    func.return %5, %6 : tensor<2x3xf32>, tensor<2x3xi64>
func.func @logic(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %i: tensor<2x3xi64>) -> (tensor<2x3xf32>, tensor<2x3xi64>) {
  %0 = nn.less %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %1 = nn.equal %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %2 = nn.and %0, %1 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %3 = nn.max %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %4 = nn.mod %x, %y {fmod = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = nn.where %2, %3, %4 : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %6 = nn.bit_shift %i, %i {direction = "LEFT"} : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
  func.return %5, %6 : tensor<2x3xf32>, tensor<2x3xi64>
}

// -----

// CHECK-LABEL: func.func @reductions(%x: tensor<2x3xf32>) -> (tensor<2xf32>, tensor<2x1xi64>, tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x2xi64>)
// CHECK-NEXT:    %0 = nn.reduce_sum %x {axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>) -> tensor<2xf32>
// CHECK-NEXT:    %1 = nn.arg_max %x {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x1xi64>
// CHECK-NEXT:    %2 = nn.log_softmax %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.cumsum %2 {axis = 1 : i64, reverse = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %4, %5 = nn.topk %3 {k = 2 : i64} : (tensor<2x3xf32>) -> (tensor<2x2xf32>, tensor<2x2xi64>)
// CHECK-NEXT:    func.return %0, %1, %3, %4, %5 : tensor<2xf32>, tensor<2x1xi64>, tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x2xi64>
func.func @reductions(%x: tensor<2x3xf32>) -> (tensor<2xf32>, tensor<2x1xi64>, tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x2xi64>) {
  %0 = nn.reduce_sum %x {axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>) -> tensor<2xf32>
  %1 = nn.arg_max %x {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x1xi64>
  %2 = nn.log_softmax %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = nn.cumsum %2 {axis = 1 : i64, reverse = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %4, %5 = nn.topk %3 {k = 2 : i64} : (tensor<2x3xf32>) -> (tensor<2x2xf32>, tensor<2x2xi64>)
  func.return %0, %1, %3, %4, %5 : tensor<2xf32>, tensor<2x1xi64>, tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x2xi64>
}

// -----

// CHECK-LABEL: func.func @indexing(%x: tensor<1x3xf32>, %i: tensor<2x2xi64>, %c: tensor<1x8x2x2xf32>) -> (tensor<2x3xf32>, tensor<2x2xf32>, tensor<2xf32>, tensor<1x2x4x4xf32>, tensor<2x2x3xf32>)
// CHECK-NEXT:    %0 = nn.expand %x {shape = array<i64: 2, 1>} : (tensor<1x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %1 = nn.tile %0 {repeats = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %2 = nn.pad %1 {pads = array<i64: 0, 1, 0, -1>, mode = "reflect"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.trilu %2 {upper = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %4 = nn.gather_elements %3, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
// CHECK-NEXT:    %5 = nn.gather_nd %3, %i : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2xf32>
// CHECK-NEXT:    %6 = nn.scatter_elements %3, %i, %4 {axis = 1 : i64, reduction = "add"} : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<2x2xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %7 = nn.scatter_nd %6, %i, %5 : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<2xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %8 = nn.depth_to_space %c {blocksize = 2 : i64, mode = "CRD"} : (tensor<1x8x2x2xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    %9 = nn.space_to_depth %8 {blocksize = 2 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x8x2x2xf32>
// CHECK-NEXT:    %10 = nn.one_hot %i, %5 {depth = 3 : i64} : (tensor<2x2xi64>, tensor<2xf32>) -> tensor<2x2x3xf32>
// CHECK-NEXT:    func.return %7, %4, %5, %8, %10 : tensor<2x3xf32>, tensor<2x2xf32>, tensor<2xf32>, tensor<1x2x4x4xf32>, tensor<2x2x3xf32>
func.func @indexing(%x: tensor<1x3xf32>, %i: tensor<2x2xi64>, %c: tensor<1x8x2x2xf32>) -> (tensor<2x3xf32>, tensor<2x2xf32>, tensor<2xf32>, tensor<1x2x4x4xf32>, tensor<2x2x3xf32>) {
  %0 = nn.expand %x {shape = array<i64: 2, 1>} : (tensor<1x3xf32>) -> tensor<2x3xf32>
  %1 = nn.tile %0 {repeats = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = nn.pad %1 {pads = array<i64: 0, 1, 0, -1>, mode = "reflect"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = nn.trilu %2 {upper = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = nn.gather_elements %3, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
  %5 = nn.gather_nd %3, %i : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2xf32>
  %6 = nn.scatter_elements %3, %i, %4 {axis = 1 : i64, reduction = "add"} : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<2x2xf32>) -> tensor<2x3xf32>
  %7 = nn.scatter_nd %6, %i, %5 : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<2xf32>) -> tensor<2x3xf32>
  %8 = nn.depth_to_space %c {blocksize = 2 : i64, mode = "CRD"} : (tensor<1x8x2x2xf32>) -> tensor<1x2x4x4xf32>
  %9 = nn.space_to_depth %8 {blocksize = 2 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x8x2x2xf32>
  %10 = nn.one_hot %i, %5 {depth = 3 : i64} : (tensor<2x2xi64>, tensor<2xf32>) -> tensor<2x2x3xf32>
  func.return %7, %4, %5, %8, %10 : tensor<2x3xf32>, tensor<2x2xf32>, tensor<2xf32>, tensor<1x2x4x4xf32>, tensor<2x2x3xf32>
}

// -----

// CHECK-LABEL: func.func @every_other(%x: tensor<2x3xf32>, %i: tensor<2x3xi64>) -> tensor<2x3xf32>
// CHECK-NEXT:    %0 = nn.abs %x : tensor<2x3xf32>
// CHECK-NEXT:    %1 = nn.log %0 : tensor<2x3xf32>
// CHECK-NEXT:    %2 = nn.reciprocal %1 : tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.floor %2 : tensor<2x3xf32>
// CHECK-NEXT:    %4 = nn.ceil %3 : tensor<2x3xf32>
// CHECK-NEXT:    %5 = nn.round %4 : tensor<2x3xf32>
// CHECK-NEXT:    %6 = nn.sign %5 : tensor<2x3xf32>
// CHECK-NEXT:    %7 = nn.sin %6 : tensor<2x3xf32>
// CHECK-NEXT:    %8 = nn.cos %7 : tensor<2x3xf32>
// CHECK-NEXT:    %9 = nn.tan %8 : tensor<2x3xf32>
// CHECK-NEXT:    %10 = nn.asin %9 : tensor<2x3xf32>
// CHECK-NEXT:    %11 = nn.acos %10 : tensor<2x3xf32>
// CHECK-NEXT:    %12 = nn.atan %11 : tensor<2x3xf32>
// CHECK-NEXT:    %13 = nn.sinh %12 : tensor<2x3xf32>
// CHECK-NEXT:    %14 = nn.cosh %13 : tensor<2x3xf32>
// CHECK-NEXT:    %15 = nn.asinh %14 : tensor<2x3xf32>
// CHECK-NEXT:    %16 = nn.acosh %15 : tensor<2x3xf32>
// CHECK-NEXT:    %17 = nn.atanh %16 : tensor<2x3xf32>
// CHECK-NEXT:    %18 = nn.softplus %17 : tensor<2x3xf32>
// CHECK-NEXT:    %19 = nn.softsign %18 : tensor<2x3xf32>
// CHECK-NEXT:    %20 = nn.mish %19 : tensor<2x3xf32>
// CHECK-NEXT:    %21 = nn.leaky_relu %20 : tensor<2x3xf32>
// CHECK-NEXT:    %22 = nn.elu %21 : tensor<2x3xf32>
// CHECK-NEXT:    %23 = nn.selu %22 : tensor<2x3xf32>
// CHECK-NEXT:    %24 = nn.celu %23 : tensor<2x3xf32>
// CHECK-NEXT:    %25 = nn.thresholded_relu %24 : tensor<2x3xf32>
// CHECK-NEXT:    %26 = nn.shrink %25 : tensor<2x3xf32>
// CHECK-NEXT:    %27 = nn.is_nan %26 : (tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %28 = nn.not %27 : tensor<2x3xi1>
// CHECK-NEXT:    %29 = nn.bitwise_not %i : tensor<2x3xi64>
// CHECK-NEXT:    %30 = nn.equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %31 = nn.less %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %32 = nn.less_or_equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %33 = nn.greater %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %34 = nn.greater_or_equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %35 = nn.and %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %36 = nn.or %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %37 = nn.xor %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %38 = nn.bitwise_and %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
// CHECK-NEXT:    %39 = nn.bitwise_or %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
// CHECK-NEXT:    %40 = nn.bitwise_xor %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
// CHECK-NEXT:    %41 = nn.min %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %42 = nn.prelu %41, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %43 = nn.reduce_sum %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %44 = nn.reduce_max %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %45 = nn.reduce_min %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %46 = nn.reduce_prod %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %47 = nn.reduce_l1 %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %48 = nn.reduce_l2 %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %49 = nn.reduce_log_sum %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %50 = nn.reduce_log_sum_exp %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %51 = nn.reduce_sum_square %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    %52 = nn.arg_min %42 {select_last_index = 1 : i64} : (tensor<2x3xf32>) -> tensor<1x3xi64>
// CHECK-NEXT:    %53 = nn.hardmax %42 {axis = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %54 = nn.cumprod %53 {axis = 1 : i64, exclusive = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %54 : tensor<2x3xf32>
func.func @every_other(%x: tensor<2x3xf32>, %i: tensor<2x3xi64>) -> tensor<2x3xf32> {
  %0 = nn.abs %x : tensor<2x3xf32>
  %1 = nn.log %0 : tensor<2x3xf32>
  %2 = nn.reciprocal %1 : tensor<2x3xf32>
  %3 = nn.floor %2 : tensor<2x3xf32>
  %4 = nn.ceil %3 : tensor<2x3xf32>
  %5 = nn.round %4 : tensor<2x3xf32>
  %6 = nn.sign %5 : tensor<2x3xf32>
  %7 = nn.sin %6 : tensor<2x3xf32>
  %8 = nn.cos %7 : tensor<2x3xf32>
  %9 = nn.tan %8 : tensor<2x3xf32>
  %10 = nn.asin %9 : tensor<2x3xf32>
  %11 = nn.acos %10 : tensor<2x3xf32>
  %12 = nn.atan %11 : tensor<2x3xf32>
  %13 = nn.sinh %12 : tensor<2x3xf32>
  %14 = nn.cosh %13 : tensor<2x3xf32>
  %15 = nn.asinh %14 : tensor<2x3xf32>
  %16 = nn.acosh %15 : tensor<2x3xf32>
  %17 = nn.atanh %16 : tensor<2x3xf32>
  %18 = nn.softplus %17 : tensor<2x3xf32>
  %19 = nn.softsign %18 : tensor<2x3xf32>
  %20 = nn.mish %19 : tensor<2x3xf32>
  %21 = nn.leaky_relu %20 : tensor<2x3xf32>
  %22 = nn.elu %21 : tensor<2x3xf32>
  %23 = nn.selu %22 : tensor<2x3xf32>
  %24 = nn.celu %23 : tensor<2x3xf32>
  %25 = nn.thresholded_relu %24 : tensor<2x3xf32>
  %26 = nn.shrink %25 : tensor<2x3xf32>
  %27 = nn.is_nan %26 : (tensor<2x3xf32>) -> tensor<2x3xi1>
  %28 = nn.not %27 : tensor<2x3xi1>
  %29 = nn.bitwise_not %i : tensor<2x3xi64>
  %30 = nn.equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %31 = nn.less %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %32 = nn.less_or_equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %33 = nn.greater %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %34 = nn.greater_or_equal %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  %35 = nn.and %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %36 = nn.or %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %37 = nn.xor %27, %27 : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %38 = nn.bitwise_and %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
  %39 = nn.bitwise_or %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
  %40 = nn.bitwise_xor %29, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
  %41 = nn.min %26, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %42 = nn.prelu %41, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %43 = nn.reduce_sum %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %44 = nn.reduce_max %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %45 = nn.reduce_min %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %46 = nn.reduce_prod %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %47 = nn.reduce_l1 %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %48 = nn.reduce_l2 %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %49 = nn.reduce_log_sum %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %50 = nn.reduce_log_sum_exp %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %51 = nn.reduce_sum_square %42 {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %52 = nn.arg_min %42 {select_last_index = 1 : i64} : (tensor<2x3xf32>) -> tensor<1x3xi64>
  %53 = nn.hardmax %42 {axis = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %54 = nn.cumprod %53 {axis = 1 : i64, exclusive = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %54 : tensor<2x3xf32>
}
