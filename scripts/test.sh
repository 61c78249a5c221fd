#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine, then runs the whole
# suite with every feature, and the library again on the pure-Rust backend alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust is the only prerequisite so far; later suites (Redis, oidc-provider) install theirs here.
command -v cargo >/dev/null || { echo "cargo is required: https://rustup.rs" >&2; exit 2; }

# The CLI tests run the testkit binary beside the `confidant` binary.
cargo build --workspace --bins --all-features --locked
cargo test --workspace --all-features --locked
# Only the library: the CLI and testkit would switch the default aws-lc backend back on.
cargo test -p confidant --no-default-features --features rust-crypto --locked
# The examples run offline against the in-process testkit; each checks what it shows.
for example in quickstart cert_to_arm mi_keyvault_cross_tenant hsm_remote_sign b2c_webapp; do
  cargo run --quiet --all-features --locked --example "$example" >/dev/null
done
