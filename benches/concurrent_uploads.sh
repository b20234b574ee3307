#!/usr/bin/env bash
# Peak memory of N concurrent 64 KiB uploads in one process, for each transport (ureq:
# a thread each; surf: a task each on async-std; reqwest: a task each on Tokio), against
# `wamedia serve` in another process.
# Figures for notes, never a pass/fail. Usage: benches/concurrent_uploads.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
cargo build --locked -q --release -p wamedia-cli
cargo build --locked -q --release -p wamedia-ureq --example ureq_concurrent_uploads
cargo build --locked -q --release -p wamedia-surf --example surf_concurrent_uploads
cargo build --locked -q --release -p wamedia-reqwest --example reqwest_concurrent_uploads
target_dir=$(cargo metadata --locked --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
tmp=$(mktemp -d)
"$target_dir/release/wamedia" serve --addr 127.0.0.1:0 > "$tmp/conn.json" 2>/dev/null &
serve=$!
trap 'kill $serve 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do [ -s "$tmp/conn.json" ] && break; sleep 0.1; done
"$target_dir/release/examples/ureq_concurrent_uploads" "$tmp/conn.json" "$n"
"$target_dir/release/examples/surf_concurrent_uploads" "$tmp/conn.json" "$n"
"$target_dir/release/examples/reqwest_concurrent_uploads" "$tmp/conn.json" "$n"
