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

# The `primacy process` tests start a real sshd (on a free loopback port,
# with throwaway keys) and reach it with the ssh client.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "== installing the Debian packages openssh-server and openssh-client (needed by the process tests)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
fi

# The S3 tests run a real S3-compatible server, moto, which the harness
# (journal_ufs::testkit) starts on free loopback ports and stops.
if ! python3 -c 'import moto.moto_server.werkzeug_app, werkzeug' >/dev/null 2>&1; then
    echo "== installing moto (needed by the S3 journal tests)"
    python3 -m pip install --quiet 'moto[server]'
fi

echo "== cargo test --workspace"
# journal-ufs's S3 tests (tests/s3.rs, on moto) are part of this run: the
# crate enables its `testkit` feature for its own tests (a dev-dependency on
# itself), as master does for its end-to-end S3 failover test.
cargo test --workspace --all-targets --locked

# The short fuzz pass: every decoder's target over its committed seed
# corpus, mutations of it and random bytes (fuzz/ is a package of its own;
# the long coverage-guided runs use cargo-afl, see docs/reliability.md).
echo "== cargo test (fuzz/: short fuzz pass)"
(cd fuzz && cargo test --locked)
