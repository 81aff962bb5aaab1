#!/usr/bin/env bash
# `cairn bench` against a fresh release `cairn serve` on this machine, next to baselines from
# the same run: disk write (dd, fsync), 4 KiB file create+fsync rate. Extra arguments go to
# `cairn bench` (e.g. --large-count 8). With TLS=1 the node serves HTTPS with a throwaway
# self-signed certificate (the client trusts it through SSL_CERT_FILE). CAIRN_BIN runs another
# build (e.g. an older commit's, for a before/after in one run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CAIRN_BIN:-}" ]; then cargo build --release -q -p cairn; fi
bin=${CAIRN_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/cairn}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3bench.XXXXXX")
trap 'pkill -f "cairn --data $work/store" || true; rm -rf "$work"' EXIT
export CAIRN_ROOT_ACCESS_KEY=BENCHACCESSKEY000001 CAIRN_ROOT_SECRET_KEY=bench-secret-0123456789abcdefghijklmnopqr
scheme=http tls=()
if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  scheme=https
  export SSL_CERT_FILE="$work/cert.pem"
fi
"$bin" --data "$work/store" serve --s3-listen 127.0.0.1:18099 --api-listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --p2p-listen /ip4/127.0.0.1/tcp/0 "${tls[@]}" > "$work/serve.log" 2>&1 &
sleep 2
echo "== baselines"
s=$(date +%s.%N); dd if=/dev/urandom of="$work/dd" bs=1M count=512 conv=fsync status=none; e=$(date +%s.%N)
echo "dd 512 MiB + fsync: $(echo "scale=1; 512 / ($e - $s)" | bc) MiB/s"
mkdir "$work/small"; head -c 4096 /dev/urandom > "$work/4k"
s=$(date +%s.%N); for i in $(seq 1 500); do cp "$work/4k" "$work/small/$i"; done; sync; e=$(date +%s.%N)
echo "500 × 4 KiB file create + sync: $(echo "scale=0; 500 / ($e - $s)" | bc) files/s"
rm -rf "$work/dd" "$work/small"
echo "== cairn bench $*"
"$bin" bench --endpoint "$scheme://127.0.0.1:18099" "$@"
