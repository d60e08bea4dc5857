"""Slurm (+ Pyxis) jobs for harness stages.

    config.py   SlurmConfig: typed site settings (the `slurm:` section of RunConfig); pure pydantic
    stages.py   stage registry: name -> (RunConfig, StageOptions) -> StageCommand; run, accuracy, compliance
    render.py   StageCommand -> commented sbatch script + the config copy it runs (templates/sbatch.sh.tmpl)
    submit.py   sbatch submission, afterok pipelines, job status from scontrol/squeue/sacct

Kept import-free: harness.config imports slurm.config, so this package must stay light.
"""
