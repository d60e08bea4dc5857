#!/bin/bash
# Install the Debian packages the multi-node tests need: a local Slurm with munge, Open MPI, shellcheck,
# and bubblewrap (the sandbox for model-written programs).
# Skips what is already installed; needs root and the Debian mirror. Then start a cluster with
#   scripts/slurm-local.sh start /tmp/slurm-state
set -euo pipefail

PACKAGES=(slurm-wlm munge openmpi-bin libopenmpi-dev shellcheck bubblewrap)
missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system: all present (${PACKAGES[*]})"
  exit 0
fi
echo "install-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
