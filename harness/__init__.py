"""MLPerf Inference Llama 2 70B harness: LoadGen runs, backends, accuracy, Slurm and preflight."""
