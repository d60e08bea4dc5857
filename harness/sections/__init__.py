"""RunConfig's sections for the features that sit above the config layer: pure pydantic models and their value
checks, no feature code, so that harness.config composes them without importing Slurm or network code.

    slurm.py       SlurmConfig: typed site settings for sbatch/srun/Pyxis (the `slurm:` section)
    fabric.py      slurm.env fabric values checked at load: UCX_NET_DEVICES, UCX_IB_GID_INDEX, UCX_TLS, NCCL_*
    preflight.py   PreflightConfig: thresholds of `harness preflight` (the `preflight:` section)
"""
