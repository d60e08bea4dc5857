"""The endpoint backend: OpenAI-compatible HTTP servers (vLLM, trtllm-serve, SGLang), token ids in and out."""
