#!/usr/bin/env bash

# Sample of hack/make-rules/build.sh in the newest trees: the tree's own
# kube::golang::build_binaries, then the binaries placed under ${KUBE_OUTPUT_BINPATH}.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
source "${KUBE_ROOT}/hack/lib/init.sh"

kube::golang::setup_env

kube::golang::build_binaries "$@"
kube::golang::place_bins
