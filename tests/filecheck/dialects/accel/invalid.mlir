// One case per verifier branch of dialects/accel.py, in its order. (NestAttr's "one
// extent and one tile per loop" cannot be written in text: the parser builds the three
// lists together.)

// -----

func.func @dup(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.nest expects distinct loop names, got ['d0', 'd0']}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "vector" tiles <d0 = 4, d0 = 4> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @big_tile(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.nest expects 1 <= tile <= extent for loop 'd0', got tile 5 and extent 4}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "vector" tiles <d0 = 4 step 5> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @zero_tile(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.nest expects 1 <= tile <= extent for loop 'd0', got tile 0 and extent 4}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "vector" tiles <d0 = 4 step 0> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @neg(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at -64 : tensor<4xf32> // expected-error {{accel.input expects a byte address >= 0, got -64}}
  func.return %x : tensor<4xf32>
}

// -----

%w = accel.weight dense<[1.0, 2.0]> : tensor<2xf32> at 0 : tensor<3xf32> // expected-error {{accel.weight expects inline data of shape [3], got [2]}}

// -----

%w = accel.weight dense<[1.0, 0.0, 0.0, 2.0]> : tensor<4xf32> at 0 {accel.stored_bits = 68 : i64} : tensor<4xf32> // expected-error {{accel.weight expects accel.stored_bits and accel.format together (a compressed weight), got only one}}

// -----

%w = accel.weight dense<[1.0, 0.0, 0.0, 2.0]> : tensor<4xf32> at 0 {accel.stored_bits = 0 : i64, accel.format = "2:4"} : tensor<4xf32> // expected-error {{accel.weight expects accel.stored_bits > 0 and a string accel.format, got 0 : i64 and "2:4"}}

// -----

func.func @view(%arg0: tensor<4xf32>) -> tensor<5xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  %v = accel.view %x : (tensor<4xf32>) -> tensor<5xf32> // expected-error {{accel.view expects the same element type and element count, got tensor<4xf32> -> tensor<5xf32>}}
  func.return %v : tensor<5xf32>
}

// -----

func.func @unit(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer expects unit in ['pe', 'vector', 'dma'], got 'gpu'}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "gpu" tiles <d0 = 4> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @kind(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer has no tiled form for kind 'nn.frobnicate'}}
  %y = accel.layer "r" "nn.frobnicate"(%x) at 64 on "vector" tiles <d0 = 4> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @pool_4d(%arg0: tensor<1x1x2x2x2x2xf32>) -> tensor<1x1x1x1x1x1xf32> {
  %x = accel.input %arg0 at 0 : tensor<1x1x2x2x2x2xf32>
  // expected-error@+1 {{accel.layer has no tiled form for a 4-D nn.pool}}
  %y = accel.layer "p" "nn.pool"(%x) at 128 on "vector" tiles <d0 = 1> params {mode = "max", kernel = array<i64: 2, 2, 2, 2>} : (tensor<1x1x2x2x2x2xf32>) -> tensor<1x1x1x1x1x1xf32>
  func.return %y : tensor<1x1x1x1x1x1xf32>
}

// -----

func.func @conv_transpose_4d(%arg0: tensor<1x1x1x1x1x1xf32>) -> tensor<1x1x1x1x1x1xf32> {
  %x = accel.input %arg0 at 0 : tensor<1x1x1x1x1x1xf32>
  // expected-error@+1 {{accel.layer has no tiled form for a 4-D nn.conv_transpose (the PE array runs 1-, 2- and 3-D)}}
  %y = accel.layer "t" "nn.conv_transpose"(%x, %x) at 128 on "pe" tiles <d0 = 1> params {} : (tensor<1x1x1x1x1x1xf32>, tensor<1x1x1x1x1x1xf32>) -> tensor<1x1x1x1x1x1xf32>
  func.return %y : tensor<1x1x1x1x1x1xf32>
}

// -----

func.func @params(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer 'c' has params that do not fit kind 'nn.conv2d'}}
  %y = accel.layer "c" "nn.conv2d"(%x, %x) at 64 on "pe" tiles <d0 = 4> params {} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @wrong_unit(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer expects unit 'vector' for nn.relu, got 'pe'}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "pe" tiles <d0 = 4> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @loops(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer expects loops ['d0'] for nn.relu, got ['m']}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "vector" tiles <m = 4> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @extent(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer expects extent 4 for loop 'd0', got 8}}
  %y = accel.layer "r" "nn.relu"(%x) at 64 on "vector" tiles <d0 = 8> params {} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

// The epilogue (dialects/accel_epilogue.py, `fuse-epilogue`): one case per branch.
func.func @epi_not_pe(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %x = accel.input %arg0 at 0 : tensor<4xf32>
  // expected-error@+1 {{accel.layer epilogue expects a conv2d/matmul/linear layer or a point-wise, layernorm or softmax layer, got 'nn.transpose'}}
  %y = accel.layer "r" "nn.transpose"(%x) at 64 on "dma" tiles <d0 = 4> params {perm = array<i64: 0>} epilogue [{kind = "nn.relu", label = "r2", operands = array<i64: -1>, in = tensor<4xf32>, out = tensor<4xf32>}] : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

func.func @epi_entry(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue entry 0 expects a dictionary with keys kind, label, operands, in, out (and optional params), got {kind = "nn.relu"}}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.relu"}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_kind(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue expects point-wise kinds (and a layout 'nn.transpose' last), got 'nn.maxpool'}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.maxpool", label = "s", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_operands(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue op 'a' (nn.add) expects 2 operands, one of them the chain value (-1), got [-1]}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.add", label = "a", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_result(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue ends with type tensor<2x4xf16>, but the layer's result is tensor<2x4xf32>}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.relu", label = "r", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf16>}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_grow(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>, %arg2: tensor<3x2x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  %r = accel.input %arg2 at 192 : tensor<3x2x4xf32>
  // expected-error@+1 {{accel.layer epilogue expects operands that broadcast to the result [2, 4] without growing it, got [3, 2, 4]}}
  %y = accel.layer "m" "nn.matmul"(%x, %w, %r) at 320 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.add", label = "a", operands = array<i64: -1, 0>, in = tensor<2x4xf32>, out = tensor<2x4xf32>}] : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<3x2x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_layout_operands(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<4x2xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects operands [-1], got [-1, -1]}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1, -1>, in = tensor<2x4xf32>, out = tensor<4x2xf32>, params = {perm = array<i64: 1, 0>}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<4x2xf32>
  func.return %y : tensor<4x2xf32>
}

// -----

func.func @epi_layout_in(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<8xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects input type tensor<2x4xf32>, got tensor<8xf32>}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.relu", label = "r", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>}, {kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<8xf32>, out = tensor<8xf32>, params = {perm = array<i64: 0>}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<8xf32>
  func.return %y : tensor<8xf32>
}

// -----

func.func @epi_layout_shape(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<3x3xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects params shape with the 8 elements of its input tensor<2x4xf32>, got array<i64: 3, 3>}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<3x3xf32>, params = {perm = array<i64: 1, 0>, shape = array<i64: 3, 3>}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<3x3xf32>
  func.return %y : tensor<3x3xf32>
}

// -----

func.func @epi_layout_perm(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects params perm, a permutation of 2 axes, got [0, 0]}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>, params = {perm = array<i64: 0, 0>}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_layout_out(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects the permuted type tensor<4x2xf32> as its output, got tensor<2x4xf32>}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>, params = {perm = array<i64: 1, 0>}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_layout_last(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<4x2xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue expects point-wise kinds (and a layout 'nn.transpose' last), got 'nn.transpose'}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<4x2xf32>, params = {perm = array<i64: 1, 0>}}, {kind = "nn.relu", label = "r", operands = array<i64: -1>, in = tensor<4x2xf32>, out = tensor<4x2xf32>}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<4x2xf32>
  func.return %y : tensor<4x2xf32>
}

// -----

func.func @epi_layout_per_axis(%arg0: tensor<2x4xi8>, %arg1: tensor<4x4xi8>) -> tensor<4x2x!quant.uniform<i32:f32:1, {1.0, 2.0, 3.0, 4.0}>> {
  %x = accel.input %arg0 at 0 : tensor<2x4xi8>
  %w = accel.input %arg1 at 64 : tensor<4x4xi8>
  // expected-error@+1 {{accel.layer epilogue layout 't' expects a per-tensor quantized or float input, got tensor<2x4x!quant.uniform<i32:f32:1, {1.0,2.0,3.0,4.0}>>}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.transpose", label = "t", operands = array<i64: -1>, in = tensor<2x4x!quant.uniform<i32:f32:1, {1.0, 2.0, 3.0, 4.0}>>, out = tensor<4x2x!quant.uniform<i32:f32:1, {1.0, 2.0, 3.0, 4.0}>>, params = {perm = array<i64: 1, 0>}}] : (tensor<2x4xi8>, tensor<4x4xi8>) -> tensor<4x2x!quant.uniform<i32:f32:1, {1.0, 2.0, 3.0, 4.0}>>
  func.return %y : tensor<4x2x!quant.uniform<i32:f32:1, {1.0, 2.0, 3.0, 4.0}>>
}

// -----

func.func @epi_rows(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue op 's' (nn.softmax) expects the axes it normalizes whole in every tile, but loop 'n' steps by 2 of 4}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4 step 2, k = 4> params {} epilogue [{kind = "nn.softmax", label = "s", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>, params = {axis = -1 : i64}}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_side_order(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue op 'c' expects side output 0 (side outputs are numbered in order), got 1}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "quant.qcast", label = "c", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4x!quant.uniform<i8:f32, 0.05>>, side = 1 : i64}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_side_kind(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  // expected-error@+1 {{accel.layer epilogue side output 'c' expects a one-operand point-wise op, got 'nn.softmax'}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "nn.softmax", label = "c", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4xf32>, side = 0 : i64}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @side_index(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "quant.qcast", label = "c", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4x!quant.uniform<i8:f32, 0.05>>, side = 0 : i64}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  // expected-error@+1 {{accel.side expects the result of a layer whose epilogue has side output 1, got 1 side outputs}}
  %s = accel.side %y, 1 at 256 : (tensor<2x4xf32>) -> tensor<2x4x!quant.uniform<i8:f32, 0.05>>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @side_type(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "quant.qcast", label = "c", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4x!quant.uniform<i8:f32, 0.05>>, side = 0 : i64}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  // expected-error@+1 {{accel.side expects type tensor<2x4x!quant.uniform<i8:f32, 0.05>> (side output 0, 'c'), got tensor<2x4xf32>}}
  %s = accel.side %y, 0 at 256 : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @side_addr(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<2x4xf32>
  %w = accel.input %arg1 at 64 : tensor<4x4xf32>
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 128 on "pe" tiles <b = 1, m = 2, n = 4, k = 4> params {} epilogue [{kind = "quant.qcast", label = "c", operands = array<i64: -1>, in = tensor<2x4xf32>, out = tensor<2x4x!quant.uniform<i8:f32, 0.05>>, side = 0 : i64}] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  // expected-error@+1 {{accel.side expects a byte address >= 0, got -64}}
  %s = accel.side %y, 0 at -64 : (tensor<2x4xf32>) -> tensor<2x4x!quant.uniform<i8:f32, 0.05>>
  func.return %y : tensor<2x4xf32>
}

// -----

func.func @epi_rows_view(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %x = accel.input %arg0 at 0 : tensor<1x2x4x4xf32>
  %w = accel.input %arg1 at 128 : tensor<1x2x4x4xf32>
  // expected-error@+1 {{accel.layer epilogue op 's' (nn.softmax) expects the axes it normalizes, [1, 2, 4, 4], to end the layer's tile view, got view [2, 4, 4]}}
  %y = accel.layer "m" "nn.matmul"(%x, %w) at 256 on "pe" tiles <b = 2, m = 4, n = 4, k = 4> params {} epilogue [{kind = "nn.softmax", label = "s", operands = array<i64: -1>, in = tensor<1x2x4x4xf32>, out = tensor<1x2x4x4xf32>, params = {axis = 0 : i64}}] : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

// -----

// accel.fused (dialects/accel_fused.py), one case per verifier branch.

func.func @fused_args(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects block arguments of its input types}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<8x4x1x1xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %v) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @fused_one(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects two or more accel.layer ops and a yield, got ['accel.layer', 'accel.yield']}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x8x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %p = accel.layer "p" "nn.conv2d"(%a, %b) at 8192 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    accel.yield %p : tensor<1x8x8x8xf32>
  }
  func.return %y : tensor<1x8x8x8xf32>
}

// -----

func.func @fused_yield(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects to yield its last layer's result}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %a : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @fused_type(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf16> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects its result type to be the last layer's, got tensor<1x4x8x8xf16>}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf16> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf16>
}

// -----

func.func @fused_kind(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x8x4x4xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g': layer 'p' (nn.maxpool) cannot be banded by rows with the group's first layer (nn.conv2d)}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x8x4x4xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.maxpool"(%e) at 8192 on "vector" tiles <n = 1, c = 8, oh = 4, ow = 4> params {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x8x8x8xf32>) -> tensor<1x8x4x4xf32>
    accel.yield %p : tensor<1x8x4x4xf32>
  }
  func.return %y : tensor<1x8x4x4xf32>
}

// -----

func.func @fused_outside(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g': layer 'e' reads a value that is not a group input}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%x, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @fused_chain(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g': layer 'p' must read the previous layer's result as its first operand and nothing else from the group}}
  %y = accel.fused "g" band "oh" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x8x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%a, %b) at 8192 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    accel.yield %p : tensor<1x8x8x8xf32>
  }
  func.return %y : tensor<1x8x8x8xf32>
}

// -----

func.func @fused_loop(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects band loop 'oh' (the last layer's rows), got 'ow'}}
  %y = accel.fused "g" band "ow" = 2 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @fused_band(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects 1 <= band <= 8, got 9}}
  %y = accel.fused "g" band "oh" = 9 overlap "cache" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @fused_overlap(%arg0: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %x = accel.input %arg0 at 4096 : tensor<1x4x8x8xf32>
  %w = accel.weight dense<1.0> : tensor<8x4x1x1xf32> at 0 : tensor<8x4x1x1xf32>
  %v = accel.weight dense<1.0> : tensor<4x8x3x3xf32> at 256 : tensor<4x8x3x3xf32>
  // expected-error@+1 {{accel.fused 'g' expects overlap in ['cache', 'recompute'], got 'keep'}}
  %y = accel.fused "g" band "oh" = 2 overlap "keep" (%x, %w, %v) : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32> {
  ^bb0(%a: tensor<1x4x8x8xf32>, %b: tensor<8x4x1x1xf32>, %c: tensor<4x8x3x3xf32>):
    %e = accel.layer "e" "nn.conv2d"(%a, %b) at 0 on "pe" tiles <n = 1, g = 1, f = 8, oh = 8 step 4, ow = 8, c = 4> params {} : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
    %p = accel.layer "p" "nn.conv2d"(%e, %c) at 8192 on "pe" tiles <n = 1, g = 1, f = 4, oh = 8 step 4, ow = 8, c = 8> params {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<4x8x3x3xf32>) -> tensor<1x4x8x8xf32>
    accel.yield %p : tensor<1x4x8x8xf32>
  }
  func.return %y : tensor<1x4x8x8xf32>
}
