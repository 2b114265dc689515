#!/usr/bin/env bash
# Runs every test of primacy on a fresh Debian machine: installs what the
# tests need when it is missing, then builds and runs the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
    exit 1
fi

# Tests that run a real ZooKeeper need the Debian package; the harness
# starts its own servers on free loopback ports and stops them.
if [ ! -e /usr/share/java/zookeeper.jar ]; then
    echo "== installing the Debian package zookeeper (needed by the ZooKeeper tests)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
fi

echo "== cargo test --workspace"
cargo test --workspace --all-targets --locked

# The short fuzz pass: every decoder's target over its committed seed
# corpus, mutations of it and random bytes (fuzz/ is a package of its own;
# the long coverage-guided runs use cargo-afl, see docs/reliability.md).
echo "== cargo test (fuzz/: short fuzz pass)"
(cd fuzz && cargo test --locked)
