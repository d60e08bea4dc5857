"""Slurm (+ Pyxis) jobs for harness stages.

    stages.py   stage registry: name -> (RunConfig, StageOptions) -> StageCommand; run, accuracy, compliance
    render.py   StageCommand -> commented sbatch script + the config copy it runs (templates/sbatch.sh.tmpl)
    submit.py   sbatch submission, afterok pipelines, job status from scontrol/squeue/sacct

Its config section, SlurmConfig, is harness/sections/slurm.py (below harness.config).
"""
