#!/usr/bin/env bash

# Sample of Kubernetes' hack/make-rules/test.sh: vet the commands.

set -o errexit
set -o nounset
set -o pipefail

KUBE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
source "${KUBE_ROOT}/hack/lib/init.sh"

kube::golang::setup_env
echo "+++ go vet ./cmd/..."
go vet ./cmd/...
