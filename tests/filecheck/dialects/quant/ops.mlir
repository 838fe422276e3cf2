// The quant dialect: !quant.uniform element types in MLIR's syntax and the three casts.
// The harness checks print -> parse -> print identity and the generic form too.

// CHECK-LABEL: func.func @casts(%x: tensor<4xf32>)
// CHECK-NEXT:    %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0125:-3>>
// CHECK-NEXT:    %r = irq.requantize %q : tensor<4x!quant.uniform<i8:f32, 0.0125:-3>> to tensor<4x!quant.uniform<u8:f32, 0.05:128>>
// CHECK-NEXT:    %y = quant.dcast %r : tensor<4x!quant.uniform<u8:f32, 0.05:128>> to tensor<4xf32>
func.func @casts(%x: tensor<4xf32>) -> tensor<4xf32> {
  %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0125:-3>>
  %r = irq.requantize %q : tensor<4x!quant.uniform<i8:f32, 0.0125:-3>> to tensor<4x!quant.uniform<u8:f32, 5.0e-2:128>>
  %y = quant.dcast %r : tensor<4x!quant.uniform<u8:f32, 0.05:128>> to tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// -----

// Zero points of 0 and full storage ranges are not printed; a narrower storage range is.
// Scales print as the shortest decimal that round-trips the float64 (MLIR prints %e).
// CHECK-LABEL: func.func @types
// CHECK-SAME:    tensor<2x!quant.uniform<i8:f32, 0.5>>
// CHECK-SAME:    tensor<2x!quant.uniform<i8<-127:127>:f32, 0.003921568859368563>>
// CHECK-SAME:    tensor<2x3x!quant.uniform<i4<-7:7>:f32:0, {0.1,0.25:1}>>
// CHECK-SAME:    tensor<3x2x!quant.uniform<u8:f32:0, {200.0,1.0e-45:7,3.0}>>
// CHECK-SAME:    tensor<1x3x!quant.uniform<i32:f32:1, {1.0e-05,2.0e-05,3.0e-05}>>
func.func @types(%a: tensor<2x!quant.uniform<i8:f32, 0.5:0>>,
                 %b: tensor<2x!quant.uniform<i8<-127:127>:f32, 0.003921568859368563>>,
                 %c: tensor<2x3x!quant.uniform<i4<-7:7>:f32:0, {0.1:0, 0.25:1}>>,
                 %d: tensor<3x2x!quant.uniform<u8:f32:0, {2.0e2, 1.0e-45:7, 3.0}>>,
                 %e: tensor<1x3x!quant.uniform<i32:f32:1, {1.0e-5, 2.0e-5, 3.0e-5}>>) {
  func.return
}

// -----

// Per-axis quantize/dequantize (a weight's output channels on axis 0).
// CHECK-LABEL: func.func @per_axis
// CHECK-NEXT:    %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02}>>
// CHECK-NEXT:    %d = quant.dcast %q : tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02}>> to tensor<2x3xf32>
func.func @per_axis(%w: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %q = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.02}>>
  %d = quant.dcast %q : tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.02}>> to tensor<2x3xf32>
  func.return %d : tensor<2x3xf32>
}

// -----

// Storage casts: integers from outside become a quantized value, and back.
// CHECK-LABEL: func.func @storage_cast
// CHECK-NEXT:    %q = quant.scast %i : tensor<4xi8> to tensor<4x!quant.uniform<u8:f32, 0.1:128>>
// CHECK-NEXT:    %s = quant.scast %q : tensor<4x!quant.uniform<u8:f32, 0.1:128>> to tensor<4xi8>
func.func @storage_cast(%i: tensor<4xi8>) -> tensor<4xi8> {
  %q = quant.scast %i : tensor<4xi8> to tensor<4x!quant.uniform<u8:f32, 0.1:128>>
  %s = quant.scast %q : tensor<4x!quant.uniform<u8:f32, 0.1:128>> to tensor<4xi8>
  func.return %s : tensor<4xi8>
}
