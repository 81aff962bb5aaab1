#!/usr/bin/env bash
# Benchmark of `cairn add` (not a test): a 1 GiB file from page cache, next to baselines measured
# in the same run. Usage: bench/add.sh [SIZE_MIB=1024] [RSS_MIB=5120]
#   - openssl dgst -sha256 (single core, SHA instructions): the hashing floor
#   - cairn add into a RAM-backed store (/dev/shm): the import pipeline's own speed
#   - dd conv=fsync, and `split` into 256 KiB files + sync (what one file per block costs the
#     filesystem), vs cairn add into a disk-backed store: the durable path
#   - peak RSS of a streamed 5 GiB add
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rss_mib=${2:-5120}
cargo build --release -q -p cairn
bin=$PWD/target/release/cairn
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
ram=$(mktemp -d /dev/shm/cairn-bench.XXXXXX)
trap 'rm -rf "$work" "$ram"' EXIT
input=$work/input.bin
head -c $((size_mib << 20)) /dev/urandom > "$input"
cat "$input" > /dev/null

secs() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
# best of 3; `$1` (a folder or file) is removed and the page cache settled before each timing
best() { local b="" out=$1; shift; for _ in 1 2 3; do rm -rf "$out"; sync; t=$(secs "$@"); if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi; done; rm -rf "$out"; echo "$b"; }
rate() { echo "scale=0; $size_mib / $1" | bc; }
add() { "$bin" --data "$1" add -q --cid-version "$2" "$input"; }

ossl=$(best "$work/none" openssl dgst -sha256 "$input")
v0=$(best "$ram/s" add "$ram/s" 0)
v1=$(best "$ram/s" add "$ram/s" 1)
dd_t=$(best "$work/dd.out" dd if="$input" of="$work/dd.out" bs=1M conv=fsync)
split_t=$(best "$work/split" bash -c "mkdir -p '$work/split' && split -b 262144 -a 5 '$input' '$work/split/x' && sync")
disk_v0=$(best "$work/s" add "$work/s" 0)
disk_v1=$(best "$work/s" add "$work/s" 1)

printf '%-48s %8s %10s %8s\n' "what (${size_mib} MiB from page cache, best of 3)" seconds "MiB/s" "x openssl"
row() { printf '%-48s %8.2f %10s %8.2f\n' "$1" "$2" "$(rate "$2")" "$(echo "scale=2; $ossl / $2" | bc)"; }
row "openssl dgst -sha256 (1 core)" "$ossl"
row "cairn add, RAM store, CIDv0" "$v0"
row "cairn add, RAM store, CIDv1 raw leaves" "$v1"
row "dd bs=1M conv=fsync to disk" "$dd_t"
row "split -b 256K into files + sync (file/block floor)" "$split_t"
row "cairn add, disk store, CIDv0, durable" "$disk_v0"
row "cairn add, disk store, CIDv1, durable" "$disk_v1"

rss=$( { head -c $((rss_mib << 20)) /dev/urandom | /usr/bin/time -f '%M' "$bin" --data "$work/rss" add -q > /dev/null; } 2>&1 | tail -1)
echo "peak RSS of a streamed ${rss_mib} MiB add (stdin, disk store): $((rss / 1024)) MiB"
