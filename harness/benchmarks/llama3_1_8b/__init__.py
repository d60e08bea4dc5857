"""Llama 3.1 8B (CNN/DailyMail summarisation): its facts (facts.py), its dataset loader and smoke set (dataset.py)."""
