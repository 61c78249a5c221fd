#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine, then runs the whole
# suite with every feature, and the library again on the pure-Rust backend alone.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is required: https://rustup.rs" >&2; exit 2; }

# msal-python and the Azure SDK for Python, for the cache interop tests
# (tests/integration/msal_interop.rs) and the testkit's proof with Microsoft's clients
# (tests/integration/microsoft_clients.rs): a virtual environment under target/, pinned by
# testkit/interop/python/requirements.txt, recreated when that file changes.
command -v python3 >/dev/null || { echo "python3 is required (Python interop tests)" >&2; exit 2; }
PY_VENV=target/python-venv
PY_REQUIREMENTS=testkit/interop/python/requirements.txt
if ! cmp -s "$PY_REQUIREMENTS" "$PY_VENV/requirements.txt"; then
  rm -rf "$PY_VENV"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY_REQUIREMENTS"
  cp "$PY_REQUIREMENTS" "$PY_VENV/requirements.txt"
fi
export MSAL_PYTHON="$PWD/$PY_VENV/bin/python"
export AZURE_SDK_PYTHON="$MSAL_PYTHON"

# panva/oidc-provider, the independent OpenID provider of tests/integration/oidc_provider.rs:
# pinned by interop/oidc-provider/package-lock.json, installed into that folder.
command -v node >/dev/null || { echo "Node.js 20 or newer is required (OpenID provider interop tests)" >&2; exit 2; }
OP_DIR=interop/oidc-provider
if ! cmp -s "$OP_DIR/package-lock.json" "$OP_DIR/node_modules/.package-lock.json.installed"; then
  npm ci --prefix "$OP_DIR" --no-audit --no-fund --loglevel=error
  cp "$OP_DIR/package-lock.json" "$OP_DIR/node_modules/.package-lock.json.installed"
fi

# Redis, for the Redis token store tests (a real server on a loopback port, started by the
# tests): Debian's package.
if ! command -v redis-server >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# The package starts a system service on 6379; the tests do not use it.

# The CLI tests and tests/integration/microsoft_clients.rs run the testkit binary.
cargo build --workspace --bins --all-features --locked
cargo test --workspace --all-features --locked
# Only the library: the CLI and testkit would switch the default aws-lc backend back on.
cargo test -p confidant --no-default-features --features rust-crypto --locked
# The examples run offline against the in-process testkit; each checks what it shows.
for example in quickstart cert_to_arm mi_keyvault_cross_tenant hsm_remote_sign b2c_webapp multi_tenant_saas; do
  cargo run --quiet --all-features --locked --example "$example" >/dev/null
done
