"""The vLLM backend: vLLM's async engine (AsyncLLM) in the harness process, continuous batching behind the SUT."""
