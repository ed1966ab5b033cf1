#!/usr/bin/env bash
# pyclient.sh: generate a Python client from proto/ and call a real sender
# with it (README, "A client in another language"). Needs Debian's
# python3-grpc-tools (installed by .ci/run as root) and bin/ (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3 # Debian's, with python3-grpc-tools
if ! "$py" -c 'import grpc_tools, grpc' 2>/dev/null; then
	echo "pyclient: skipped: python3-grpc-tools is not installed (apt-get install python3-grpc-tools)"
	[ -z "${NACKCAST_REQUIRE_PYCLIENT:-}" ] || { echo "pyclient: NACKCAST_REQUIRE_PYCLIENT is set" >&2; exit 1; }
	exit 0
fi
work=$(mktemp -d)
sender_pid=
cleanup() {
	[ -n "$sender_pid" ] && kill "$sender_pid" 2>/dev/null && wait "$sender_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# Generate: the well-known types come with grpc_tools.
wkt=$("$py" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
mkdir -p "$work/gen"
"$py" -m grpc_tools.protoc -I proto -I "$wkt" --python_out="$work/gen" --grpc_python_out="$work/gen" proto/nackcast/v1/*.proto
echo "pyclient: generated $(find "$work/gen" -name '*.py' | wc -l) Python modules from proto/"

# A sender with a sample channel, plaintext, on free ports of lo.
mkdir -p "$work/origin/news"
printf 'hello\n' >"$work/origin/news/a.txt"
printf 'world\n' >"$work/origin/news/b.txt"
free() { "$py" -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
port=$(free tcp)
bin/sender -plaintext -origin "$work/origin" -state-dir "$work/state" -listen "127.0.0.1:$port" \
	-metrics-addr 127.0.0.1:0 -port "$(free udp)" -interface lo >"$work/sender.log" 2>&1 &
sender_pid=$!

cat >"$work/client.py" <<'PY'
import sys
import grpc
from nackcast.v1 import sender_pb2, sender_pb2_grpc

addr = sys.argv[1]
stub = sender_pb2_grpc.SenderServiceStub(grpc.insecure_channel(addr))
# The sender answers as soon as it has scanned its origin.
resp = stub.ListChannels(sender_pb2.ListChannelsRequest(), timeout=10, wait_for_ready=True)
for ch in resp.channels:
    m = stub.GetManifest(sender_pb2.GetManifestRequest(channel=ch.channel), timeout=10).manifest
    print("channel %s: %d objects, manifest %016x, first %s" % (ch.channel, ch.object_count, m.version, m.objects[0].path))
PY
out=$(PYTHONPATH="$work/gen" "$py" "$work/client.py" "127.0.0.1:$port")
echo "pyclient: $out"
grep -q "channel news: 2 objects, manifest [0-9a-f]\{16\}, first a.txt" <<<"$out" || {
	echo "pyclient: unexpected answer; sender log:" >&2
	cat "$work/sender.log" >&2
	exit 1
}
echo "pyclient: OK"
