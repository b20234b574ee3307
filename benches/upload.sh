#!/usr/bin/env bash
# Wall time and client CPU of `wamedia upload` to `wamedia serve` on loopback, for each
# transport, beside `wamedia encrypt` of the same file in the same sitting: an upload
# is that first pass (hashes, MAC, checkpoints) plus the body regenerated while it is
# sent, so its CPU per byte over encrypt's says what the second pass and the send path
# cost. Figures for notes, never a pass/fail.
#
#   benches/upload.sh [SIZE_MIB ...]        (default: 200 1024; WAMEDIA_BIN=path built
#                                            with --features reqwest,surf skips the build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(200 1024)

if [ -n "${WAMEDIA_BIN:-}" ]; then
  bin=$WAMEDIA_BIN
else
  cargo build --locked --release -q -p wamedia-cli --features reqwest,surf
  target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  bin="$target/release/wamedia"
fi
# The transports this binary has: those `--transport` accepts.
transports=()
for tr in ureq surf reqwest; do
  "$bin" upload --transport "$tr" --help >/dev/null 2>&1 && transports+=("$tr")
done

# On tmpfs when there is one: a disk's writeback moves the figures by tens of percent.
tmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
mkdir "$tmp/store"
"$bin" serve --addr 127.0.0.1:0 --store "$tmp/store" > "$tmp/conn.json" 2>/dev/null &
serve=$!
trap 'kill $serve 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do [ -s "$tmp/conn.json" ] && break; sleep 0.1; done

# Runs "$@" under GNU time; prints "wall cpu" in seconds.
timed() {
  /usr/bin/time -o "$tmp/t" -f "%e %U %S" "$@" >/dev/null 2>&1
  awk '{ printf "%s %.2f", $1, $2 + $3 }' "$tmp/t"
}

printf '%-34s %8s %12s %8s %14s\n' "what" "wall s" "client CPU s" "ns/B" "CPU/encrypt's"
for mib in "${sizes[@]}"; do
  bytes=$((mib << 20))
  head -c "$bytes" /dev/urandom > "$tmp/plain"
  for threads in one auto; do
    read -r wall cpu <<<"$(timed "$bin" --threads "$threads" encrypt --type document "$tmp/plain" "$tmp/body")"
    rm -f "$tmp/body"
    enc_cpu=$cpu
    nsb=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN { printf "%.2f", c * 1e9 / b }')
    printf '%-34s %8s %12s %8s %14s\n' "encrypt $mib MiB, threads $threads" "$wall" "$cpu" "$nsb" "1.00"
    for tr in "${transports[@]}"; do
      read -r wall cpu <<<"$(timed "$bin" --threads "$threads" upload --media-conn "$tmp/conn.json" \
        --transport "$tr" --type document --no-info --no-resume --quiet "$tmp/plain")"
      nsb=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN { printf "%.2f", c * 1e9 / b }')
      r=$(awk -v a="$cpu" -v b="$enc_cpu" 'BEGIN { printf "%.2f", a / b }')
      printf '%-34s %8s %12s %8s %14s\n' "upload $mib MiB, $tr, threads $threads" "$wall" "$cpu" "$nsb" "$r"
      rm -f "$tmp"/store/*
    done
  done
done
