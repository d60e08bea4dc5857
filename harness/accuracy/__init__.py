"""Accuracy scoring identical to the MLCommons llama2-70b reference: decode, split, ROUGE, verdict."""
