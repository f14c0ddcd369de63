#!/usr/bin/env bash
# Sets up a fresh machine (see setup.sh), then builds once and runs every test:
# unit tests, doctests, the sqllogictest files, and the end-to-end tests against real
# pulsar-lite brokers with the official Python client. Also checks formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all --check
# The end-to-end tests drive the `magnetar` binary; build it in the same (dev) profile.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# nextest does not run doctests.
cargo test --workspace --doc
