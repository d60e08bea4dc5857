"""gpt-oss-120b: harmony prompts, sampled decoding, exact match over AIME25, GPQA-Diamond and LiveCodeBench v6."""
