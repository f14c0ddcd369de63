#!/usr/bin/env bash
# Sets up a fresh machine (see setup.sh), builds Magnetar and runs the clickstream demo:
# an embedded pulsar-lite broker, a click generator, cli/examples/clickstream.sql, and the
# fraud alerts it writes, printed as they arrive. Extra arguments go to `magnetar demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build -p magnetar-cli
exec ./target/debug/magnetar demo "$@"
