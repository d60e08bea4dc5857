"""Llama 2 70B: its facts (facts.py) and its scorer, identical to language/llama2-70b/evaluate-accuracy.py."""
