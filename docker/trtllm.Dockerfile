# mlperf-llm-harness on NVIDIA's TensorRT-LLM release image: the image every Slurm stage runs in (Pyxis).
#   docker build -f docker/trtllm.Dockerfile -t mlperf-llm-harness:trtllm-1.2.1 .
#   enroot import -o trtllm-1.2.1-harness.sqsh dockerd://mlperf-llm-harness:trtllm-1.2.1
# (docs/tensorrt-llm.md "The container image" has the steps without a Docker daemon, and what to check.)
# TRTLLM_TAG must name a tag of nvcr.io/nvidia/tensorrt-llm/release; the harness follows 1.2.1.
ARG TRTLLM_TAG=1.2.1
FROM nvcr.io/nvidia/tensorrt-llm/release:${TRTLLM_TAG}

LABEL org.opencontainers.image.title="mlperf-llm-harness (TensorRT-LLM)" \
      org.opencontainers.image.description="MLPerf Inference Llama 2 70B harness on the TensorRT-LLM release image"

WORKDIR /opt/mlperf-llm-harness
# The product and its data files (package data under harness/, compliance/, submission/), and its installer.
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/install.sh
COPY harness harness
COPY compliance compliance
COPY submission submission
COPY systems systems
# The README's install command. The image's torch is kept (install.sh installs one only when none imports).
RUN ./scripts/install.sh

ENV PYTHONUNBUFFERED=1
