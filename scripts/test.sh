#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine, then runs the whole
# suite with every feature, and again on the pure-Rust backend alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust is the only prerequisite so far; later suites (Redis, oidc-provider) install theirs here.
command -v cargo >/dev/null || { echo "cargo is required: https://rustup.rs" >&2; exit 2; }

cargo test --workspace --all-features --locked
cargo test --workspace --no-default-features --features rust-crypto --locked
