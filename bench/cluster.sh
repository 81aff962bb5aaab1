#!/usr/bin/env bash
# S3 PUT/GET MiB/s on a single node and on a 6-node loopback cluster (`ec:4+2`), same run,
# next to baselines (openssl dgst -sha256, dd + fsync). All nodes, the load generator and
# the baselines share this machine's cores and disk, so the cluster figure is what six
# nodes on one box give — it measures the cluster's own overhead (parity, placement, RPC,
# fsync on six stores), not a network.
# Usage: bench/cluster.sh [LARGE_MIB] [LARGE_COUNT]   (default 32 × 16)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-32}; count=${2:-16}
cargo build --release -q -p cairn
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/cairn
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-clusterbench.XXXXXX")
cleanup() { pkill -f "$work" || true; sleep 1; rm -rf "$work"; }
trap cleanup EXIT
export CAIRN_ROOT_ACCESS_KEY=BENCHACCESSKEY000001 CAIRN_ROOT_SECRET_KEY=bench-secret-0123456789abcdefghijklmnopqr
now() { date +%s.%N; }

echo "== baselines"
head -c 512M /dev/urandom > "$work/file"
s=$(now); openssl dgst -sha256 "$work/file" >/dev/null; e=$(now)
echo "openssl dgst -sha256 512 MiB: $(echo "scale=1; 512 / ($e - $s)" | bc) MiB/s"
rm "$work/file"
s=$(now); dd if=/dev/zero of="$work/dd" bs=1M count=512 conv=fsync status=none; e=$(now)
echo "dd 512 MiB + fsync: $(echo "scale=1; 512 / ($e - $s)" | bc) MiB/s"
rm "$work/dd"

# start NAME [BOOTSTRAP...]: a node on free ports (joining $JOIN's cluster when set)
start() {
  local name=$1; shift
  local args=()
  for b in "$@"; do args+=(--bootstrap "$b"); done
  if [ -n "${JOIN:-}" ]; then args+=(--join "$JOIN"); fi
  "$bin" --data "$work/$name" serve --s3-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --gateway-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --p2p-listen /ip4/127.0.0.1/tcp/0 "${args[@]}" > "$work/$name.log" 2>&1 &
  until grep -q "S3 API on" "$work/$name.log"; do sleep 0.2; done
}
s3_of() { grep -o 'S3 API on http://[0-9.:]*' "$work/$1.log" | head -1 | sed 's/S3 API on //'; }
p2p_of() { "$bin" --data "$work/$1" id --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["addrs"][0])'; }
bench() {
  "$bin" bench --endpoint "$1" --large-mib "$mib" --large-count "$count" --small-count 500 \
    --multipart-mib 64
}

echo "== single node"
start single
bench "$(s3_of single)"
pkill -f "$work/single" || true

echo "== 6 nodes, ec:4+2"
addrs=()
for i in 0 1 2 3 4 5; do
  mkdir -p "$work/n$i"
  printf '[storage]\nredundancy = "ec:4+2"\nrepair_interval = "1h"\n' > "$work/n$i/cairn.toml"
  start "n$i" "${addrs[@]}"
  addrs+=("$(p2p_of "n$i")")
  # every other node joins the first one's cluster
  if [ "$i" = 0 ]; then JOIN=$("$bin" --data "$work/n0" cluster invite); fi
done
until [ "$("$bin" --data "$work/n0" peers | grep -c ' member ')" -ge 5 ]; do sleep 0.5; done
sleep 2 # a members tick everywhere
bench "$(s3_of n0)"
du -sb "$work"/n*/blocks | awk '{s+=$1} END {printf "bytes in blocks on 6 nodes: %d\n", s}'
