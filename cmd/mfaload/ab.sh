#!/usr/bin/env bash
# ab.sh runs a same-run A/B of two mfad builds with mfaload, each on a fresh data
# dir, as BENCHMARKS.md measures them.
#
#   cmd/mfaload/ab.sh A_BINARY B_BINARY [OUT]
#
# OUT.txt gets mfaload's table and OUT.json its results (OUT defaults to ./ab).
# Environment, all optional:
#   SCENARIOS   mfaload --scenarios (default: every scenario, in mfaload's order)
#   USERS DEVICES DURATION   10000, 4, 10s
#   A_ENV B_ENV     extra environment of each server, e.g. "MFAD_READ_CACHE_MB=0"
#   A_FLAGS B_FLAGS extra serve flags, e.g. "--group-commit=false"
#   GOMEMLIMIT  of both servers (120MiB, the compose file's)
#   MFALOAD     the load tool (built from this tree when empty)
#
# A is measured first in every scenario, and on a busy machine the first side tends
# to lose: run both orders and report both.
set -euo pipefail

a=${1:?usage: ab.sh A_BINARY B_BINARY [OUT]}
b=${2:?usage: ab.sh A_BINARY B_BINARY [OUT]}
out=${3:-ab}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

load=${MFALOAD:-}
if [ -z "$load" ]; then
	load=$work/mfaload
	(cd "$(dirname "$0")" && go build -o "$load" .)
fi

# start BINARY DIR HTTP_PORT NATS_PORT ENV FLAGS: serve on loopback, wait until healthy.
start() {
	local bin=$1 dir=$2 http=$3 nats=$4 extra_env=$5 flags=$6
	mkdir -p "$dir"
	# shellcheck disable=SC2086 # extra_env and flags are word lists on purpose
	env GOMEMLIMIT="${GOMEMLIMIT:-120MiB}" $extra_env "$bin" serve --data-dir "$dir" \
		--http-addr "127.0.0.1:$http" --nats-listen "127.0.0.1:$nats" --log-level warn $flags \
		>"$dir.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 150); do
		curl -sf "127.0.0.1:$http/healthz" >/dev/null && return 0
		sleep 0.2
	done
	echo "ab.sh: $bin did not become healthy; its log:" >&2
	cat "$dir.log" >&2
	return 1
}

start "$a" "$work/a" 18191 14391 "${A_ENV:-}" "${A_FLAGS:-}"
pid_a=${pids[-1]}
start "$b" "$work/b" 18192 14392 "${B_ENV:-}" "${B_FLAGS:-}"
pid_b=${pids[-1]}

scenarios=()
if [ -n "${SCENARIOS:-}" ]; then scenarios=(--scenarios "$SCENARIOS"); fi
"$load" --url http://127.0.0.1:18191 --data-dir "$work/a" --pid "$pid_a" \
	--nats-url "$("$a" nats-url --role auditor --data-dir "$work/a" --nats-listen 127.0.0.1:14391)" \
	--compare http://127.0.0.1:18192 --compare-data-dir "$work/b" --compare-pid "$pid_b" \
	--compare-nats-url "$("$b" nats-url --role auditor --data-dir "$work/b" --nats-listen 127.0.0.1:14392)" \
	--users "${USERS:-10000}" --devices "${DEVICES:-4}" --duration "${DURATION:-10s}" --events \
	--state "$work/state.gob" --json "$out.json" "${scenarios[@]}" >"$out.txt" 2>&1 ||
	{ tail -20 "$out.txt" >&2; exit 1; }
grep -A20 'scenario  req/s' "$out.txt"
