#!/usr/bin/env bash
# Prints, in one sitting, what `openssl speed` says this machine's AES-256-CBC and SHA-256
# kernels do on one core, the one-core bounds that follow for WhatsApp media encryption
# and verified decryption, and what `wamedia encrypt` / `wamedia decrypt` actually reach
# on a random file (best of N runs), with each figure's ratio to its bound.
#
#   benches/compare.sh [SIZE_MIB=256] [RUNS=3]      (WAMEDIA_BIN=path to skip the build)
#
# Bounds (one core; every byte goes through AES once and through three SHA-256 chains:
# the plaintext hash, the HMAC and the encrypted body's hash):
#   encrypt: 1 / (1/aes_cbc_enc + 3/sha256)
#   decrypt: 1 / (1/aes_cbc_dec + 3/sha256)   (CBC decryption runs blocks in parallel)
# and the two-core bounds with the chains split across two threads (encryption: AES +
# plaintext SHA-256 against HMAC + body SHA-256; decryption: AES + one SHA-256 against two).
# Run it on a quiet machine: a build beside it moves every figure.
set -euo pipefail

size_mib=${1:-256}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# WAMEDIA_BIN runs a binary already built; by default the release CLI is built here.
if [ -n "${WAMEDIA_BIN:-}" ]; then
  bin=$WAMEDIA_BIN
else
  cargo build --locked --release -q -p wamedia-cli
  target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  bin="$target/release/wamedia"
fi

# On tmpfs when there is one: a disk's writeback moves the figures by tens of percent.
tmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# openssl speed's last column is the 16 KiB-block rate in kB/s (1000 bytes).
speed() {
  openssl speed -seconds 3 -bytes 16384 "$@" 2>/dev/null | tail -1 | awk '{v=$NF; sub(/k$/,"",v); printf "%.0f", v/1000}'
}
aes_enc=$(speed -evp aes-256-cbc)
aes_dec=$(speed -decrypt -evp aes-256-cbc)
sha=$(speed -evp sha256)

bound() { awk -v a="$1" -v s="$2" 'BEGIN { printf "%.0f", 1 / (1 / a + 3 / s) }'; }
enc_bound=$(bound "$aes_enc" "$sha")
dec_bound=$(bound "$aes_dec" "$sha")
# Two cores, the chains split as AES + plaintext SHA-256 on one, HMAC + body SHA-256 on
# the other: the slower side sets the pace.
bound2() { awk -v a="$1" -v s="$2" 'BEGIN { x = 1 / a + 1 / s; y = 2 / s; printf "%.0f", 1 / (x > y ? x : y) }'; }
enc_bound2=$(bound2 "$aes_enc" "$sha")
dec_bound2=$(bound2 "$aes_dec" "$sha")

head -c "$((size_mib << 20))" /dev/urandom >"$tmp/plain"
bytes=$((size_mib << 20))

# Best wall time of $runs runs of "$@", in seconds.
best() {
  local best_s="" s0 s1 t
  for _ in $(seq "$runs"); do
    s0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    s1=$(date +%s.%N)
    t=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.4f", b - a }')
    if [ -z "$best_s" ] || awk -v t="$t" -v b="$best_s" 'BEGIN { exit !(t < b) }'; then
      best_s=$t
    fi
  done
  echo "$best_s"
}

"$bin" encrypt --type document --json "$tmp/meta.json" "$tmp/plain" "$tmp/body"
field() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$tmp/meta.json"; }
key=$(field media_key)
sha_plain=$(field file_sha256)
sha_enc=$(field file_enc_sha256)

enc1_s=$(best "$bin" --threads one encrypt --type document --media-key "$key" --json "$tmp/m2.json" "$tmp/plain" "$tmp/body2")
cmp -s "$tmp/body" "$tmp/body2" || { echo "the same key gave a different body" >&2; exit 1; }
enc2_s=$(best "$bin" --threads two encrypt --type document --media-key "$key" --json "$tmp/m3.json" "$tmp/plain" "$tmp/body3")
cmp -s "$tmp/body" "$tmp/body3" || { echo "two threads gave a different body" >&2; exit 1; }
dec_args=(decrypt --type document --media-key "$key" --file-sha256 "$sha_plain"
  --file-enc-sha256 "$sha_enc" --file-length "$bytes" "$tmp/body")
dec1_s=$(best "$bin" --threads one "${dec_args[@]}" "$tmp/out")
cmp -s "$tmp/plain" "$tmp/out" || { echo "decryption did not give the plaintext back" >&2; exit 1; }
dec2_s=$(best "$bin" --threads two "${dec_args[@]}" "$tmp/out2")
cmp -s "$tmp/plain" "$tmp/out2" || { echo "two threads did not give the plaintext back" >&2; exit 1; }

# Video gets a streaming sidecar: one more HMAC chain over the ciphertext, on the side
# of the HMAC and the body hash when there are two threads.
encv1_s=$(best "$bin" --threads one encrypt --type video --media-key "$key" --json "$tmp/m4.json" "$tmp/plain" "$tmp/body4")
encv2_s=$(best "$bin" --threads two encrypt --type video --media-key "$key" --json "$tmp/m5.json" "$tmp/plain" "$tmp/body5")
cmp -s "$tmp/body4" "$tmp/body5" || { echo "two threads gave a different video body" >&2; exit 1; }
cmp -s "$tmp/m4.json" "$tmp/m5.json" || { echo "two threads gave a different sidecar" >&2; exit 1; }

mbs() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
enc1=$(mbs "$enc1_s"); enc2=$(mbs "$enc2_s")
dec1=$(mbs "$dec1_s"); dec2=$(mbs "$dec2_s")
encv1=$(mbs "$encv1_s"); encv2=$(mbs "$encv2_s")
# The sidecar's bounds: four SHA-256 chains; on two threads, AES + one against three.
encv_bound=$(awk -v a="$aes_enc" -v s="$sha" 'BEGIN { printf "%.0f", 1 / (1 / a + 4 / s) }')
encv_bound2=$(awk -v a="$aes_enc" -v s="$sha" 'BEGIN { x = 1 / a + 1 / s; y = 3 / s; printf "%.0f", 1 / (x > y ? x : y) }')

echo "openssl speed (16 KiB blocks, one core): AES-256-CBC encrypt $aes_enc MB/s, decrypt $aes_dec MB/s, SHA-256 $sha MB/s"
row() { printf '%-40s %8s %12s %8s %12s\n' "$@"; }
row "what ($size_mib MiB, best of $runs; video: sidecar too)" "MB/s" "bound MB/s" "ratio" "vs 1 thread"
row "wamedia --threads one encrypt" "$enc1" "$enc_bound" "$(ratio "$enc1" "$enc_bound")" ""
row "wamedia --threads two encrypt" "$enc2" "$enc_bound2" "$(ratio "$enc2" "$enc_bound2")" "$(ratio "$enc2" "$enc1")"
row "wamedia --threads one decrypt (checks)" "$dec1" "$dec_bound" "$(ratio "$dec1" "$dec_bound")" ""
row "wamedia --threads two decrypt (checks)" "$dec2" "$dec_bound2" "$(ratio "$dec2" "$dec_bound2")" "$(ratio "$dec2" "$dec1")"
row "wamedia --threads one encrypt (video)" "$encv1" "$encv_bound" "$(ratio "$encv1" "$encv_bound")" ""
row "wamedia --threads two encrypt (video)" "$encv2" "$encv_bound2" "$(ratio "$encv2" "$encv_bound2")" "$(ratio "$encv2" "$encv1")"
