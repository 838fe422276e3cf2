// One case per verifier branch of dialects/quant.py, in the order of the file.

// -----

// expected-error@+1 {{expected a storage type like i8, u8 or i4, got 'f8'}}
func.func @f(%a: tensor<2x!quant.uniform<f8:f32, 0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{expected a storage width of at most 32 bits, got 64}}
func.func @f(%a: tensor<2x!quant.uniform<i64:f32, 0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{!quant.uniform expects a storage width in [2, 32], got 1}}
func.func @f(%a: tensor<2x!quant.uniform<i1:f32, 0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{!quant.uniform expects a storage range within [-8, 7] with min < max, got [-9, 7]}}
func.func @f(%a: tensor<2x!quant.uniform<i4<-9:7>:f32, 0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{!quant.uniform expects a float expressed type, got i32}}
func.func @f(%a: tensor<2x!quant.uniform<i8:i32, 0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{!quant.uniform expects positive finite scales, got -0.5}}
func.func @f(%a: tensor<2x!quant.uniform<i8:f32, -0.5>>) {
  func.return
}

// -----

// expected-error@+1 {{!quant.uniform expects zero points in the storage range [0, 255], got 300}}
func.func @f(%a: tensor<2x!quant.uniform<u8:f32, 0.5:300>>) {
  func.return
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<3x!quant.uniform<i8:f32, 0.1>> {
  %q = quant.qcast %x : tensor<4xf32> to tensor<3x!quant.uniform<i8:f32, 0.1>> // expected-error {{quant.qcast expects the result shape to equal the input shape [4], got [3]}}
  func.return %q : tensor<3x!quant.uniform<i8:f32, 0.1>>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %q = quant.qcast %x : tensor<4xf32> to tensor<4xf32> // expected-error {{quant.qcast expects a quantized result element type, got f32}}
  func.return %q : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %q = quant.qcast %x : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4x!quant.uniform<i8:f32, 0.1>> // expected-error {{quant.qcast expects a float input element type}}
  func.return %q : tensor<4x!quant.uniform<i8:f32, 0.1>>
}

// -----

func.func @f(%w: tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>> {
  %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>> // expected-error {{quant.qcast expects 2 scales for the result's axis 0, got 3}}
  func.return %q : tensor<2x3x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>>
}

// -----

func.func @f(%w: tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<i8:f32:2, {0.1,0.2}>> {
  %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32:2, {0.1,0.2}>> // expected-error {{quant.qcast expects the result's quantized axis 2 < rank 2}}
  func.return %q : tensor<2x3x!quant.uniform<i8:f32:2, {0.1,0.2}>>
}

// -----

func.func @f(%x: tensor<4xf16>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %q = quant.qcast %x : tensor<4xf16> to tensor<4x!quant.uniform<i8:f32, 0.1>> // expected-error {{quant.qcast expects the float side to be the expressed type f32, got f16}}
  func.return %q : tensor<4x!quant.uniform<i8:f32, 0.1>>
}

// -----

func.func @f(%x: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f16, 0.1>> {
  %q = irq.requantize %x : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4x!quant.uniform<i8:f16, 0.1>> // expected-error {{irq.requantize expects the same expressed type, got f32 and f16}}
  func.return %q : tensor<4x!quant.uniform<i8:f16, 0.1>>
}

// -----

func.func @f(%x: tensor<2x!quant.uniform<i8:f32, 0.1>>) -> tensor<2x!quant.uniform<i8:f32:0, {0.1,0.2}>> {
  %q = irq.requantize %x : tensor<2x!quant.uniform<i8:f32, 0.1>> to tensor<2x!quant.uniform<i8:f32:0, {0.1,0.2}>> // expected-error {{irq.requantize expects a per-tensor result type}}
  func.return %q : tensor<2x!quant.uniform<i8:f32:0, {0.1,0.2}>>
}

// -----

func.func @f(%x: tensor<4xi16>) -> tensor<4x!quant.uniform<u8:f32, 0.1>> {
  %q = quant.scast %x : tensor<4xi16> to tensor<4x!quant.uniform<u8:f32, 0.1>> // expected-error {{quant.scast expects a quantized type and its storage integer type, got tensor<4xi16> and tensor<4x!quant.uniform<u8:f32, 0.1>>}}
  func.return %q : tensor<4x!quant.uniform<u8:f32, 0.1>>
}

// -----

func.func @f(%x: tensor<4xi8>) -> tensor<2x!quant.uniform<i8:f32, 0.1>> {
  %q = quant.scast %x : tensor<4xi8> to tensor<2x!quant.uniform<i8:f32, 0.1>> // expected-error {{quant.scast expects the result shape to equal the input shape [4], got [2]}}
  func.return %q : tensor<2x!quant.uniform<i8:f32, 0.1>>
}
