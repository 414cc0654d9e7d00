#!/usr/bin/env bash
# Build the sandbox control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from the Go module proxy with the ordinary `go` client.
#
# The wrapper modules in sandbox/go/{k8s,etcd} pin every dependency (go.mod + go.sum are
# committed). Binaries go to a cache outside the repository, keyed by the versions, and the
# build is skipped when they are all present.
#
#   sandbox/build.sh            build (or reuse) and print the binary directory on the last line
#   sandbox/build.sh --regen    regenerate the wrapper go.mod files from the proxy (maintainers)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT=${GRIDSHIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gridshim}
OUT=${SANDBOX_BIN:-$CACHE_ROOT/ctlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION}
BINS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=mod"

log() { printf '[sandbox-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

have_all() { for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }

regen_k8s() {
  local dir=$HERE/go/k8s staging kmod
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init gridshim.local/sandbox/k8s >/dev/null 2>&1)
  staging="v0.${K8S_VERSION#v1.}"
  kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # Read upstream's go.mod through the go tool and turn every ./staging replace into a
  # replace onto the published staging tag (v1.36.3 -> v0.36.3).
  go mod edit -json "$kmod" | python3 -c '
import json, sys
m = json.load(sys.stdin)
go = m["Go"]["Version"] if isinstance(m.get("Go"), dict) else m["Go"]
print("-go=" + go)
for g in m.get("Godebug") or []:
    print("-godebug=%s=%s" % (g["Key"], g["Value"]))
for r in m.get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("STAGING " + r["Old"]["Path"])
' | while read -r a b; do
    if [ "$a" = STAGING ]; then (cd "$dir" && go mod edit -replace="$b=$b@$staging")
    else (cd "$dir" && go mod edit "$a"); fi
  done
  (cd "$dir" && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION")
}

regen_etcd() {
  local dir=$HERE/go/etcd
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init gridshim.local/sandbox/etcd >/dev/null 2>&1 \
     && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
}

if [ "${1:-}" = --regen ]; then
  log "regenerating wrapper modules for k8s $K8S_VERSION, etcd $ETCD_VERSION"
  regen_k8s; regen_etcd; log "done; commit sandbox/go/*/go.{mod,sum}"; exit 0
fi

if have_all; then
  log "control plane cached in $OUT"
  echo "$OUT"; exit 0
fi

command -v go >/dev/null || { echo "sandbox/build.sh: Go is required (go1.24+)" >&2; exit 1; }
[ -f "$HERE/go/k8s/go.mod" ] || regen_k8s
[ -f "$HERE/go/etcd/go.mod" ] || regen_etcd

start=$(date +%s)
mkdir -p "$OUT.tmp"
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done

log "building etcd $ETCD_VERSION (cold: a few minutes)"
(cd "$HERE/go/etcd" && go build -ldflags "-s -w" -o "$OUT.tmp/etcd" go.etcd.io/etcd/server/v3)
log "etcd built ($(( $(date +%s) - start ))s)"

log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S_VERSION (cold: 20-40 min on 2 cores)"
(cd "$HERE/go/k8s" && go build -v -ldflags "$LD" -o "$OUT.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl 2>&1 \
  | awk -v t0="$start" '{ n++ } n % 200 == 0 { printf "[sandbox-build] %d packages compiled (%ds)\n", n, systime() - t0 > "/dev/stderr"; fflush() }
                        END { printf "[sandbox-build] %d packages compiled\n", n > "/dev/stderr" }')
[ "${PIPESTATUS[0]}" = 0 ] || { log "kubernetes build failed"; exit 1; }

"$OUT.tmp/kube-apiserver" --version >&2
"$OUT.tmp/etcd" --version | head -1 >&2
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
log "control plane built in $(( $(date +%s) - start ))s -> $OUT"
echo "$OUT"
