#!/usr/bin/env bash
# Compose end-to-end drill, cleaned up on every exit (run it under
# `timeout`, as make compose-e2e does, to bound it):
#   1. build the image and bring the cloud of deploy/compose up;
#   2. wait until every receiver reports the sample channel complete
#      (status API) and compare the SHA-256 of every file inside each
#      receiver's volume with the origin volume's;
#   3. publish a new file, SIGKILL the primary container before its first
#      pass, and check that the backup takes over and delivers the file;
#   4. start the primary again and check that the backup hands back.
# Needs a Docker engine and the compose tool; skips (exit 0) without them.
# Uses host ports 7001-7003, 7101-7103 and 9101-9105 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
	echo "compose-e2e: skipped: no Docker engine reachable"
	exit 0
fi
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	echo "compose-e2e: skipped: no docker compose tool"
	exit 0
fi

project="nackcast-e2e-$$"
file=deploy/compose/docker-compose.yml
image="${NACKCAST_IMAGE:-nackcast:dev}"
ctl=bin/nackctl
dc() { "${compose[@]}" -f "$file" -p "$project" "$@"; }
step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "compose-e2e: FAILED: $*" >&2
	dc ps >&2 || true
	dc logs --tail 40 >&2 || true
	exit 1
}
cleanup() {
	dc down -v --remove-orphans >/dev/null 2>&1 || true
	rm -rf "$work"
}
work=$(mktemp -d)
trap cleanup EXIT
trap 'echo "compose-e2e: interrupted" >&2; exit 1' TERM INT

# sums VOLUME: the SHA-256 of every file of the sample channel in a volume,
# computed inside a container of the image.
sums() {
	docker run --rm --network none -v "${project}_$1:/v:ro" --entrypoint /nackcast/nackctl "$image" sum /v/sample
}
# state ADDR: a sender's state, e.g. SENDER_STATE_STANDBY.
state() { "$ctl" -o json status "$1" | jq -r .state; }

step "build the image and start the cloud"
make --no-print-directory image IMAGE="$image" >/dev/null
label() { docker inspect "$image" --format "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
[ "$(label version)" = "$(git describe --tags --always --dirty)" ] || fail "image version label $(label version), want $(git describe --tags --always --dirty)"
[ "$(label revision)" = "$(git rev-parse HEAD)" ] || fail "image revision label $(label revision)"
echo "image $image: version $(label version), revision $(label revision)"
# The primary holds a new object's first pass back for 8 s, so that the
# object published below is still unsent when the primary is killed.
export NACKCAST_IMAGE="$image" NACKCAST_SAMPLE_LARGE=32Mi NACKCAST_PRIMARY_FIRST_PASS_DELAY=8s
dc up -d
receivers=(127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103)
# nackctl on the host speaks mutual TLS with the admin certificate.
certs_id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=certs" | head -n1)
[ -n "$certs_id" ] || fail "no certs container"
docker cp "$certs_id:/certs" "$work/certs" >/dev/null
export NACKCAST_TLS_CA="$work/certs/ca.pem" NACKCAST_TLS_CERT="$work/certs/admin.pem" NACKCAST_TLS_KEY="$work/certs/admin.key"

step "wait for every receiver to complete the sample channel"
"$ctl" wait -for 180s "${receivers[@]}" || fail "receivers did not complete"
origin_sums=$(sums origin)
n=$(echo "$origin_sums" | wc -l)
for i in 1 2 3; do
	got=$(sums "receiver-$i")
	[ "$got" = "$origin_sums" ] || fail "receiver-$i's volume differs from the origin"
	echo "receiver-$i: $n files match the origin's SHA-256"
done

step "a clean start: no network alert, no failover, the backup sees the primary"
# The receivers start before the primary is ready: that is no network
# fault, and they follow the primary, not the backup.
alerts=$("$ctl" -o json status 127.0.0.1:7002 | jq '[.recentAlerts[]? | select(.kind == "ALERT_KIND_NETWORK")] | length')
[ "$alerts" = 0 ] || fail "the backup raised $alerts network alerts during a clean start"
for r in "${receivers[@]}"; do
	st=$("$ctl" -o json status "$r")
	[ "$(jq -r '.failovers // "0"' <<<"$st")" = 0 ] || fail "$r counts failovers after a clean start: $(jq -c '{activeSender, failovers}' <<<"$st")"
	[ "$(jq -r '.activeSender // "primary:7001"' <<<"$st")" = primary:7001 ] || fail "$r follows $(jq -r .activeSender <<<"$st") after a clean start"
done
"$ctl" status 127.0.0.1:7002 | grep '^  primary ' | grep -q 'alive, active' || fail "the standing-by backup does not see the primary alive: $("$ctl" status 127.0.0.1:7002 | grep '^  primary ')"
echo "no network alert, no failover; $("$ctl" status 127.0.0.1:7002 | grep '^  primary ' | sed 's/^  //')"

step "mutual TLS: a plaintext client and a receiver's certificate are refused"
plain_err=$(env -u NACKCAST_TLS_CA -u NACKCAST_TLS_CERT -u NACKCAST_TLS_KEY "$ctl" -addr 127.0.0.1:7001 channels 2>&1) && fail "a plaintext client was served"
grep -q "requires mutual TLS" <<<"$plain_err" || fail "a plaintext client was not told that TLS is required: $plain_err"
echo "plaintext client refused: $plain_err"
denied=$("$ctl" -tls-cert "$work/certs/receiver-1.pem" -tls-key "$work/certs/receiver-1.key" -addr 127.0.0.1:7001 delete -channel sample small-000.bin 2>&1) &&
	fail "a receiver's certificate was allowed to delete: $denied"
grep -q PermissionDenied <<<"$denied" || fail "delete with a receiver's certificate: $denied"
echo "a receiver's certificate cannot delete: PermissionDenied"

step "publish a new file, then kill the primary before its first pass"
head -c 3000000 /dev/urandom >"$work/new.bin"
"$ctl" -addr 127.0.0.1:7001 publish "$work/new.bin" -channel sample -path after-failover/new.bin
dc kill -s SIGKILL primary >/dev/null
echo "primary killed"
"$ctl" wait -for 120s -objects $((n + 1)) "${receivers[@]}" || fail "the backup did not deliver the new file"
[ "$(state 127.0.0.1:7002)" = "SENDER_STATE_ACTIVE" ] || fail "backup is not active after the primary died"
for r in "${receivers[@]}"; do
	"$ctl" -o json status "$r" | jq -e '[.epochs[] | select(.backup == true)] | length > 0' >/dev/null ||
		fail "$r got no packet from the backup"
done
origin_sums=$(sums origin)
for i in 1 2 3; do
	[ "$(sums "receiver-$i")" = "$origin_sums" ] || fail "receiver-$i differs from the origin after the failover"
done
echo "backup took over; every receiver holds the new file, verified"

step "start the primary again: the backup hands back"
dc start primary >/dev/null
for _ in $(seq 1 60); do
	[ "$(state 127.0.0.1:7002 2>/dev/null)" = "SENDER_STATE_STANDBY" ] && [ "$(state 127.0.0.1:7001 2>/dev/null)" = "SENDER_STATE_ACTIVE" ] && break
	sleep 1
done
[ "$(state 127.0.0.1:7002)" = "SENDER_STATE_STANDBY" ] || fail "backup did not hand back"
[ "$(state 127.0.0.1:7001)" = "SENDER_STATE_ACTIVE" ] || fail "primary did not become active"
"$ctl" status 127.0.0.1:7001 127.0.0.1:7002 | grep -E '^(primary|backup) '

echo
echo "compose-e2e: OK"
