#!/usr/bin/env bash
# Lay out a pristine Kubernetes v1.20.2 tree (Debian's source package) for the realtree tests.
# Usage: .ci/real-tree.sh CACHE_DIR   -> prints the tree's path
# The download is kept in CACHE_DIR/debsrc; the tree is unpacked afresh at a fixed path
# (CACHE_DIR/ci/kubernetes-1.20.2) on every run, so code generation is exercised for real
# while the shared GOCACHE still hits (GOPATH-mode cache keys include the source path).
set -euo pipefail
cache=${1:?cache dir}
debsrc="$cache/debsrc"
mkdir -p "$debsrc" "$cache/ci"
tarball=$(ls "$debsrc"/kubernetes_*really1.20.2*.orig.tar.gz 2>/dev/null | head -n1 || true)
if [[ -z "$tarball" ]]; then
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    cat > /etc/apt/sources.list.d/kbuild-deb-src.sources <<EOT
Types: deb-src
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
  fi
  apt-get update -qq >&2
  (cd "$debsrc" && apt-get source --download-only kubernetes >&2)
  tarball=$(ls "$debsrc"/kubernetes_*.orig.tar.gz | head -n1)
fi
tree="$cache/ci/kubernetes-1.20.2"
rm -rf "$tree"
tar -xzf "$tarball" -C "$cache/ci"
[[ -f "$tree/hack/lib/version.sh" ]] || { echo "unexpected tarball layout: $tarball" >&2; exit 1; }
echo "$tree"
