#!/usr/bin/env bash
# Peak RSS of `cairn serve` across a 5 GiB `sftp put` and `sftp get` (OpenSSH's client), their
# times, and the same run's baselines (openssl dgst -sha256 of the file, a raw disk write).
# Needs openssh-client. Usage: bench/sftp-rss.sh [SIZE_BYTES=5368709120]
set -u
cd "$(dirname "$0")/.."
cargo build --release -q -p cairn
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/cairn
SIZE=${1:-5368709120}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-sftp-rss.XXXXXX")
trap 'pkill -INT -f "cairn --data $WORK/store" 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/src
head -c "$SIZE" /dev/urandom > "$WORK"/src/big.bin
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
MIB=$((SIZE / 1048576))
echo "size: $MIB MiB"
t=$(secs openssl dgst -sha256 "$WORK"/src/big.bin); echo "baseline openssl dgst -sha256: $t s ($(echo "$MIB / $t" | bc) MiB/s)"
t=$(secs dd if=/dev/zero of="$WORK"/dd.bin bs=1M count=1024 conv=fsync); echo "baseline dd 1 GiB conv=fsync: $t s ($(echo "1024 / $t" | bc) MiB/s)"
rm -f "$WORK"/dd.bin

ssh-keygen -q -t ed25519 -N '' -C bench -f "$WORK"/key
/usr/bin/time -v -o "$WORK"/time.txt "$BIN" --data "$WORK"/store serve --s3-listen 127.0.0.1:0 \
  --api-listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 --p2p-listen /ip4/127.0.0.1/tcp/0 \
  --sftp-listen 127.0.0.1:18022 > "$WORK"/serve.log 2>&1 &
sleep 3
"$BIN" --data "$WORK"/store sftp add bench --key "$WORK"/key.pub >/dev/null
SFTP=(sftp -i "$WORK"/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR -P 18022 bench@127.0.0.1)
cd "$WORK"/src
t=$(secs "${SFTP[@]}" <<< "put big.bin"); echo "sftp put: $t s ($(echo "$MIB / $t" | bc) MiB/s)"
t=$(secs "${SFTP[@]}" <<< "get big.bin $WORK/back.bin"); echo "sftp get: $t s ($(echo "$MIB / $t" | bc) MiB/s)"
cmp -s "$WORK"/src/big.bin "$WORK"/back.bin && echo "get byte-exact"
pkill -INT -f "cairn --data $WORK/store"; sleep 3
grep -E 'Maximum resident' "$WORK"/time.txt
