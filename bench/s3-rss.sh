#!/usr/bin/env bash
# Peak RSS of `cairn serve` across a 5 GiB PUT (aws cli, multipart) and a 5 GiB GET, and their
# times. Needs the aws cli. Usage: bench/s3-rss.sh [SIZE_BYTES=5368709120]
set -u
cd "$(dirname "$0")/.."
cargo build --release -q -p cairn
BIN=$PWD/target/release/cairn
SIZE=${1:-5368709120}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-rss.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rm -rf "$WORK"/rss-store "$WORK"/rss-src; mkdir -p "$WORK"/rss-src
head -c "$SIZE" /dev/urandom > "$WORK"/rss-src/big.bin
export CAIRN_ROOT_ACCESS_KEY=AK000000000000000001 CAIRN_ROOT_SECRET_KEY=sk0000000000000000000000000000000000000001
/usr/bin/time -v -o "$WORK"/rss-time.txt "$BIN" --data "$WORK"/rss-store serve --s3-listen 127.0.0.1:18010 --api-listen 127.0.0.1:0 > "$WORK"/rss-serve.log 2>&1 &
sleep 2
export AWS_ACCESS_KEY_ID=$CAIRN_ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_ROOT_SECRET_KEY AWS_DEFAULT_REGION=us-east-1; unset AWS_CA_BUNDLE
E="--endpoint-url http://127.0.0.1:18010"
aws $E s3 mb s3://rss >/dev/null
s=$(date +%s.%N); aws $E s3 cp "$WORK"/rss-src/big.bin s3://rss/big.bin >/dev/null 2>&1; e=$(date +%s.%N); echo "PUT 5 GiB (aws cli, 8 MiB parts): $(echo "$e - $s" | bc) s"
s=$(date +%s.%N); aws $E s3 cp s3://rss/big.bin - 2>/dev/null | sha256sum > "$WORK"/rss-get.sum; e=$(date +%s.%N); echo "GET 5 GiB (aws cli to a pipe): $(echo "$e - $s" | bc) s"
sha256sum < "$WORK"/rss-src/big.bin > "$WORK"/rss-src.sum; cmp "$WORK"/rss-get.sum "$WORK"/rss-src.sum && echo "GET byte-exact"
aws $E s3api head-object --bucket rss --key big.bin --query Metadata.cid --output text
pkill -INT -f "cairn --data $WORK/rss-store"; sleep 3
grep -E 'Maximum resident' "$WORK"/rss-time.txt
rm -rf "$WORK"/rss-src "$WORK"/rss-store
