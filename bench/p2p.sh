#!/usr/bin/env bash
# Transfer of one object from node A to node B over loopback (Bitswap), next to the same
# transfer Helia → Helia and an `openssl dgst -sha256` of the file, all in the same run.
# Usage: bench/p2p.sh [SIZE_MIB]   (default 256). Needs node/npm (crates/cairn/tests/js).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-256}
cargo build --release -q -p cairn
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/cairn
helia=$PWD/crates/cairn/tests/js
[ -d "$helia/node_modules" ] || (cd "$helia" && npm ci --no-audit --no-fund >/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-p2pbench.XXXXXX")
cleanup() { pkill -f "$work" || true; rm -rf "$work"; }
trap cleanup EXIT
head -c $((size << 20)) /dev/urandom > "$work/file"
now() { date +%s.%N; }
rate() { echo "scale=1; $size / ($2 - $1)" | bc; }

echo "== baseline"
s=$(now); openssl dgst -sha256 "$work/file" >/dev/null; e=$(now)
echo "openssl dgst -sha256 ${size} MiB: $(rate "$s" "$e") MiB/s"

echo "== cairn A → cairn B"
for n in a b; do
  "$bin" --data "$work/$n" serve --s3-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --gateway-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --p2p-listen /ip4/127.0.0.1/tcp/0 \
    > "$work/$n.log" 2>&1 &
done
for n in a b; do until grep -q "S3 API on" "$work/$n.log"; do sleep 0.2; done; done
cid=$("$bin" --data "$work/a" add -q "$work/file")
addr=$("$bin" --data "$work/a" id --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["addrs"][0])')
"$bin" --data "$work/b" dial "$addr" >/dev/null
s=$(now); "$bin" --data "$work/b" cat "$cid" > "$work/got"; e=$(now)
cmp -s "$work/got" "$work/file" || { echo "bytes differ"; exit 1; }
echo "cairn ${size} MiB A → B (cat on B, verified, stored): $(rate "$s" "$e") MiB/s"

echo "== helia → helia"
(cd "$helia" && node helia-peer.mjs serve "$work/file" > "$work/helia.json" 2>/dev/null &)
until grep -q ready "$work/helia.json" 2>/dev/null; do sleep 0.2; done
hcid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cid"])' "$work/helia.json")
haddr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["multiaddrs"][0])' "$work/helia.json")
[ "$hcid" = "$cid" ] || echo "note: Helia's CID $hcid differs from Cairn's $cid"
s=$(now); (cd "$helia" && node helia-peer.mjs fetch "$hcid" "$haddr" --timeout=600 --out="$work/hgot" >/dev/null 2>&1); e=$(now)
cmp -s "$work/hgot" "$work/file" || { echo "helia bytes differ"; exit 1; }
echo "helia ${size} MiB → helia: $(rate "$s" "$e") MiB/s"
