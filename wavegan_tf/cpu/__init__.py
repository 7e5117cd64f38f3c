"""CPU tuning: convolution formulations (polyphase matmuls), the plan tuned per machine, the
allocator's settings, bfloat16 support and the global dtype policy."""
