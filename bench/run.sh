#!/bin/sh
# Issue 5's side-by-side benchmark: regmirror sync vs skopeo sync --all on
# three workloads served by local Debian docker-registry processes.
#
#   bench/run.sh                  # full size (about 1.7 GB of blobs)
#   BENCH_SCALE=0.1 bench/run.sh  # same requests, a tenth of the bytes
#
# Other knobs (see bench/main.go): BENCH_DIR, BENCH_WORKLOADS=app,big,many,
# BENCH_TOOLS=skopeo,regmirror, REGMIRROR_ARGS="--jobs 8".
# Not part of `go test ./...` or .ci/run: it measures time.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v docker-registry >/dev/null 2>&1 || need="$need docker-registry"
command -v skopeo >/dev/null 2>&1 || need="$need skopeo"
if [ -n "$need" ]; then
	echo "installing$need" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq $need
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/regmirror-bench-bin.XXXXXX")
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -o "$out/regmirror" ./cmd/regmirror
go build -o "$out/bench" ./bench

echo "# machine: $(nproc) CPUs; $(lscpu | sed -n 's/^Model name: *//p'); $(free -g | awk '/^Mem:/{print $2}') GiB RAM; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# versions: $("$out/regmirror" version 2>/dev/null | head -1); $(skopeo --version); docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')"
REGMIRROR="$out/regmirror" "$out/bench"
