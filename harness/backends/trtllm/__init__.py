"""The TensorRT-LLM LLM API backend: adapter, its pure rules, and model preparation stages."""
