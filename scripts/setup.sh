#!/usr/bin/env bash
# Installs what Magnetar's build, demo and tests need on a fresh Debian machine with a Rust
# toolchain: protoc (pulsar-rs generates its protocol code with it), and a project-local
# Python virtualenv (.venv) holding pulsar-lite (the test broker), the official Pulsar
# client (interop tests) and moto (S3 on loopback). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import pulsar, pulsar_lite, moto' >/dev/null 2>&1 \
   || ! cmp -s scripts/requirements.txt .venv/.requirements 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt .venv/.requirements
fi
lite=$(ls .venv/lib/python*/site-packages/pulsar_lite/bin/pulsar-lite 2>/dev/null | head -n 1)
[ -x "$lite" ] || { echo "setup: pulsar-lite binary missing from .venv" >&2; exit 1; }
echo "setup: ready (protoc $(protoc --version | cut -d' ' -f2), pulsar-lite at $lite)"
