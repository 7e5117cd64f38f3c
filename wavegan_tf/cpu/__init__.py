"""CPU tuning: convolution formulations (polyphase matmuls), the allocator's settings, bfloat16
support and the global dtype policy."""
