#!/usr/bin/env bash
# check-deploy.sh checks dripflow's deployment files without a Docker engine:
#
#   1. docker-compose.yml is valid for docker-compose (Debian's v1 package,
#      installed with apt-get — as root or through sudo — when missing);
#   2. every command under cmd/ builds with CGO_ENABLED=0 -trimpath for Linux
#      into a static binary, as deploy/Dockerfile builds them;
#   3. the Kubernetes manifests, the Prometheus configuration, the Dockerfile
#      and the compose file agree with the binaries and the DRIPFLOW_*
#      settings (go test ./deploy/...), and every YAML file parses.
#
#   scripts/check-deploy.sh        # or: make check-deploy
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
log() { echo "check-deploy: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; fi
apt_updated=""
install() { # packages…
  command -v apt-get >/dev/null 2>&1 || { log "cannot install $* (no apt-get); install it yourself"; return 1; }
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2 || return 1
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ---- 1. docker-compose.yml ----------------------------------------------
command -v docker-compose >/dev/null 2>&1 || install docker-compose || fail "docker-compose is missing"
log "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1): docker-compose.yml"
docker-compose -f docker-compose.yml config -q || fail "docker-compose.yml is invalid"
# Once more with the example .env, so that its values substitute cleanly too.
docker-compose --env-file deploy/compose.env.example -f docker-compose.yml config -q ||
  fail "docker-compose.yml is invalid with deploy/compose.env.example"
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
log "compose services: $services"

# ---- 2. static binaries -------------------------------------------------
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cmds=()
for d in cmd/*/; do cmds+=("$(basename "$d")"); done
[ "${#cmds[@]}" -gt 0 ] || fail "no commands under cmd/"
log "CGO_ENABLED=0 GOOS=linux $GO build -trimpath ./cmd/... (${cmds[*]})"
CGO_ENABLED=0 GOOS=linux $GO build -trimpath -o "$out/" ./cmd/... || fail "build failed"

# Whichever ELF inspector is here; `file` is installed when none is.
if ! command -v readelf >/dev/null 2>&1 && ! command -v file >/dev/null 2>&1; then
  install file || true
fi
for c in "${cmds[@]}"; do
  bin="$out/$c"
  [ -x "$bin" ] || fail "cmd/$c produced no binary"
  # The toolchain's own record of how the binary was built.
  $GO version -m "$bin" | grep -Eq '^[[:space:]]+build[[:space:]]+CGO_ENABLED=0$' ||
    fail "$c: go version -m does not report CGO_ENABLED=0"
  how=""
  if command -v readelf >/dev/null 2>&1; then
    # Static: no program interpreter and no dynamic section.
    if readelf -lW "$bin" | grep -q 'Requesting program interpreter' || readelf -dW "$bin" | grep -q 'NEEDED'; then
      fail "$c is dynamically linked: $(readelf -lW "$bin" | grep -o 'interpreter: [^]]*' || true)"
    fi
    how="readelf: no interpreter, no NEEDED libraries"
  fi
  if command -v file >/dev/null 2>&1; then
    desc=$(file -b "$bin")
    case "$desc" in
      *ELF*"statically linked"*) how="${how:+$how; }file: statically linked" ;;
      *ELF*"dynamically linked"*) fail "$c is dynamically linked: $desc" ;;
      *) log "$c: file says: $desc" ;;
    esac
  fi
  if [ -z "$how" ] && command -v ldd >/dev/null 2>&1; then
    if ldd "$bin" 2>&1 | grep -Eq 'not a dynamic executable|statically linked'; then
      how="ldd: not a dynamic executable"
    else
      fail "$c is dynamically linked: $(ldd "$bin" 2>&1 | head -3)"
    fi
  fi
  [ -n "$how" ] || fail "$c: no readelf, file or ldd to tell whether it is static"
  log "$c: static ($how), $(du -h "$bin" | cut -f1)"
done

# ---- 3. manifests -------------------------------------------------------
yamls=(docker-compose.yml deploy/kubernetes/*.yaml deploy/prometheus/*.yml)
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  # A second, YAML 1.1 parser (Kubernetes reads YAML 1.1).
  python3 - "${yamls[@]}" <<'EOF' || fail "a YAML file does not parse"
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        sys.exit(f"{path}: empty")
print(f"check-deploy: PyYAML parses {len(sys.argv) - 1} files", file=sys.stderr)
EOF
fi
if command -v kubeconform >/dev/null 2>&1; then
  log "kubeconform"
  # KEDA's ScaledObject is a custom resource kubeconform has no schema for
  # (deploy/keda_test.go checks it against the code instead).
  kubeconform -strict -summary -skip ScaledObject -ignore-filename-pattern 'kustomization\.yaml' deploy/kubernetes ||
    fail "kubeconform rejects deploy/kubernetes"
fi
log "go test ./deploy/..."
$GO test -count=1 ./deploy/... || fail "the deployment files disagree with the code"
log "ok"
