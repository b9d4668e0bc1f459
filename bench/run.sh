#!/bin/sh
# The side-by-side benchmark: regmirror sync against regsync, crane and
# skopeo on three workloads served by local Debian docker-registry
# processes, with the source read directly (lan) and through a simulated
# WAN link (wan).
#
#   bench/run.sh                  # full size (about 1.7 GB of blobs)
#   BENCH_SCALE=0.1 bench/run.sh  # same requests, a tenth of the bytes
#
# Other knobs (see bench/main.go): BENCH_DIR, BENCH_WORKLOADS=app,big,many,
# BENCH_TOOLS=regmirror,regsync,crane,skopeo, BENCH_PROFILES=lan,wan,
# BENCH_RTT=40ms, BENCH_BANDWIDTH=50 (MiB/s), REGMIRROR_ARGS="--jobs 8".
# Not part of `go test ./...` or .ci/run: it measures time.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v docker-registry >/dev/null 2>&1 || need="$need docker-registry"
command -v skopeo >/dev/null 2>&1 || need="$need skopeo"
[ -x /usr/bin/time ] || need="$need time"   # GNU time: the tools' own peak RSS (bench/main.go timed)
if [ -n "$need" ]; then
	echo "installing$need" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq $need
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/regmirror-bench-bin.XXXXXX")
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -o "$out/regmirror" ./cmd/regmirror
go build -o "$out/bench" ./bench

# The peers, at the versions the numbers were taken with, into the bench's
# work directory: never into this module's dependencies.
BENCH_DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/regmirror-bench.XXXXXX")}
export BENCH_DIR
BENCH_BIN="$BENCH_DIR/bin"
export BENCH_BIN
mkdir -p "$BENCH_BIN"
for p in github.com/regclient/regclient/cmd/regsync@v0.11.7 github.com/google/go-containerregistry/cmd/crane@v0.22.1; do
	[ -x "$BENCH_BIN/$(basename "${p%@*}")" ] || GOBIN="$BENCH_BIN" go install "$p"
done

echo "# machine: $(nproc) CPUs; $(lscpu | sed -n 's/^Model name: *//p'); $(free -g | awk '/^Mem:/{print $2}') GiB RAM; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# versions: $("$out/regmirror" version 2>/dev/null | head -1); $("$BENCH_BIN/regsync" version 2>/dev/null | awk '/^VCSTag/{print "regsync " $2}'); crane $("$BENCH_BIN/crane" version 2>/dev/null); $(skopeo --version); docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')"
REGMIRROR="$out/regmirror" "$out/bench"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
