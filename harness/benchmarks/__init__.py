"""The benchmarks, one folder each (facts, dataset loader, scorer), registered by name in `registry.py`.

    facts.py      the record every benchmark fills: names, sample counts, metrics, latency limits, rules
    registry.py   name -> facts; the one place that lists the benchmark folders
    llama2_70b/   Llama 2 70B (OpenOrca, ROUGE): llama2-70b-99 and llama2-70b-99.9
"""
