"""Scoring shared by the benchmarks: accuracy-log reading, decoding, sentence splitting, ROUGE, the verdict.

    responses.py   token buffers from mlperf_log_accuracy.json (first qsl_idx wins)
    texts.py       decoding and post-processing on all cores
    sentences.py   sentence splitting identical to nltk.sent_tokenize, no download
    rouge.py       per-sample ROUGE as rouge_score computes it
    pipeline.py    the steps above chained for a ROUGE benchmark, the means, accuracy.txt/json writing
    verdict.py     a benchmark's targets and upper limits (from its facts), compared as the checker compares
"""
