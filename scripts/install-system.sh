#!/usr/bin/env bash
# Install the Debian packages the test suite needs (real Slurm, munge, Open MPI, shellcheck).
# Skips packages that are already installed. Needs root (or sudo).
set -euo pipefail
packages=(slurm-wlm munge openmpi-bin libopenmpi-dev shellcheck)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "system packages present: ${packages[*]}"
