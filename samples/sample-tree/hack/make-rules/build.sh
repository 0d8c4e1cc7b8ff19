#!/usr/bin/env bash

# Sample of Kubernetes' hack/make-rules/build.sh: the tree's own
# kube::golang::build_binaries for the given targets (KUBE_BUILD_PLATFORMS, else
# the host), then the binaries placed under ${KUBE_OUTPUT_BINPATH}/<os>/<arch>.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
source "${KUBE_ROOT}/hack/lib/init.sh"

kube::golang::build_binaries "$@"
kube::golang::place_bins
