// Verifier errors of the table-driven nn families (math, logic, reductions, indexing), in
// the order of their modules.

func.func @is_nan_not_bool(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = nn.is_nan %x : (tensor<2xf32>) -> tensor<2xf32> // expected-error {{nn.is_nan expects an i1 result, got tensor<2xf32>}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @where_condition(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = nn.where %x, %x, %x : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32> // expected-error {{nn.where expects an i1 condition, got tensor<2xf32>}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @where_result_type(%c: tensor<2xi1>, %x: tensor<2xf32>) -> tensor<2xi64> {
  %0 = nn.where %c, %x, %x : (tensor<2xi1>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xi64> // expected-error {{nn.where expects the result element type of its operands, got}}
  func.return %0 : tensor<2xi64>
}

// -----

func.func @topk_k(%x: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %0, %1 = nn.topk %x {k = 4 : i64} : (tensor<2x3xf32>) -> (tensor<2x4xf32>, tensor<2x4xi64>) // expected-error {{nn.topk expects 0 <= k <= 3, got 4}}
  func.return %0 : tensor<2x4xf32>
}

// -----

func.func @gather_elements_float_indices(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.gather_elements %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.gather_elements expects integer indices, got tensor<2x3xf32>}}
  func.return %0 : tensor<2x3xf32>
}

// -----

func.func @tile_repeats(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.tile %x {repeats = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.tile expects 2 repeats >= 0, got [1]}}
  func.return %0 : tensor<2x3xf32>
}

// -----

func.func @pad_mode(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.pad %x {pads = array<i64: 0, 0, 0, 0>, mode = "mirror"} : (tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.pad expects mode in ['constant', 'reflect', 'edge', 'wrap'], got 'mirror'}}
  func.return %0 : tensor<2x3xf32>
}

// -----

func.func @pad_count(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.pad %x {pads = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.pad expects 4 pads for 2x3, got [0, 0]}}
  func.return %0 : tensor<2x3xf32>
}

// -----

func.func @pad_crop(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.pad %x {pads = array<i64: 0, -2, 0, -2>} : (tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.pad pads [0, -2, 0, -2] crop 2x3 below zero}}
  func.return %0 : tensor<2x3xf32>
}

// -----

func.func @trilu_rank(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = nn.trilu %x : (tensor<3xf32>) -> tensor<3xf32> // expected-error {{nn.trilu expects rank >= 2, got 3}}
  func.return %0 : tensor<3xf32>
}

// -----

func.func @depth_to_space_channels(%x: tensor<1x6x2x2xf32>) -> tensor<1x1x4x4xf32> {
  %0 = nn.depth_to_space %x {blocksize = 2 : i64} : (tensor<1x6x2x2xf32>) -> tensor<1x1x4x4xf32> // expected-error {{nn.depth_to_space expects NCHW with C divisible by 4, got 1x6x2x2}}
  func.return %0 : tensor<1x1x4x4xf32>
}

// -----

func.func @depth_to_space_mode(%x: tensor<1x4x2x2xf32>) -> tensor<1x1x4x4xf32> {
  %0 = nn.depth_to_space %x {blocksize = 2 : i64, mode = "CDR"} : (tensor<1x4x2x2xf32>) -> tensor<1x1x4x4xf32> // expected-error {{nn.depth_to_space expects mode DCR or CRD}}
  func.return %0 : tensor<1x1x4x4xf32>
}

// -----

func.func @space_to_depth_size(%x: tensor<1x1x3x4xf32>) -> tensor<1x4x1x2xf32> {
  %0 = nn.space_to_depth %x {blocksize = 2 : i64} : (tensor<1x1x3x4xf32>) -> tensor<1x4x1x2xf32> // expected-error {{nn.space_to_depth expects NCHW with H, W divisible by 2, got 1x1x3x4}}
  func.return %0 : tensor<1x4x1x2xf32>
}

// -----

func.func @gather_elements_rank(%x: tensor<2x3xf32>, %i: tensor<2xi64>) -> tensor<2xf32> {
  %0 = nn.gather_elements %x, %i : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2xf32> // expected-error {{nn.gather_elements expects indices of rank 2, got 2}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @gather_nd_depth(%x: tensor<2x3xf32>, %i: tensor<2x3xi64>) -> tensor<2xf32> {
  %0 = nn.gather_nd %x, %i : (tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2xf32> // expected-error {{nn.gather_nd cannot index 2x3 with 2x3}}
  func.return %0 : tensor<2xf32>
}

// -----

func.func @scatter_reduction(%x: tensor<2x3xf32>, %i: tensor<2x3xi64>) -> tensor<2x3xf32> {
  %0 = nn.scatter_elements %x, %i, %x {reduction = "sub"} : (tensor<2x3xf32>, tensor<2x3xi64>, tensor<2x3xf32>) -> tensor<2x3xf32> // expected-error {{nn.scatter_elements expects reduction none, add, mul, max or min}}
  func.return %0 : tensor<2x3xf32>
}
