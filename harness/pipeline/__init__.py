"""`harness pipeline`: accuracy → performance → compliance (TEST06; gpt-oss-120b: TEST07, TEST09) per benchmark ×
scenario, then package and check.

Modules:
    spec         the pipeline file (PipelineSpec) and its loader
    plan         stages, their effective run configs and commands; --from / --only selection
    fingerprint  sha256 of a stage's inputs (config, model, dataset, harness version, upstream results)
    state        pipeline-state.json: per-stage fingerprint, status and result, written atomically
    process      runs one stage command, output live and logged
    executor     local execution: skip up-to-date stages, stop at the first failure with a resume command
    slurm        Slurm mode: an afterok chain of `--only STAGE` jobs rendered and submitted by harness.slurm
    driver       run_pipeline(): the one call the CLI makes
"""
