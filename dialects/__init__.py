"""irflow's dialects: `nn` (graph level), `quant` (quantized types), `accel` (lowered program)."""
