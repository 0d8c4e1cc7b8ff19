#!/usr/bin/env bash

# Sample of Kubernetes' hack/make-rules/build.sh: build the given targets for
# KUBE_BUILD_PLATFORMS (else the host) into ${KUBE_OUTPUT}/bin/<os>/<arch>,
# stamped by kube::version::ldflags; static ones with CGO_ENABLED=0.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
source "${KUBE_ROOT}/hack/lib/init.sh"

kube::golang::setup_env

IFS=" " read -ra targets <<< "$*"
IFS=" " read -ra platforms <<< "${KUBE_BUILD_PLATFORMS:-$(go env GOOS)/$(go env GOARCH)}"
ldflags="-s -w -buildid= $(kube::version::ldflags)"

for platform in "${platforms[@]}"; do
  out="${KUBE_OUTPUT}/bin/${platform}"
  mkdir -p "${out}"
  for target in "${targets[@]}"; do
    echo "+++ building ${target} for ${platform}"
    cgo=1
    if kube::golang::is_statically_linked_library "${target}"; then cgo=0; fi
    GOOS="${platform%/*}" GOARCH="${platform##*/}" CGO_ENABLED="${cgo}" \
      go build -tags selinux,notest -ldflags "${ldflags}" -o "${out}/${target##*/}" "${KUBE_GO_PACKAGE}/${target}"
  done
done
