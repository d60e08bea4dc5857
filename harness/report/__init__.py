"""`harness report`: figures, an HTML page and a Markdown table from finished run directories.

Modules:
    data     reads a run directory: manifest, samples.jsonl timings, LoadGen detail-log results
    figures  matplotlib Figure builders (Agg, no pyplot state): throughput, TTFT/TPOT CDFs,
             output lengths against the reference, per-replica load
    tables   the Markdown table across runs
    build    write_report(): everything to an output directory, atomically
"""
