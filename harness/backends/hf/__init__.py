"""The PyTorch/transformers backend (CPU or CUDA; static-cache graph decoder for greedy Llama on CUDA)."""
