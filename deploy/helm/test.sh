#!/usr/bin/env bash
# Chart checks for `make test`: installs helm (built with the local Go
# toolchain from the module proxy; not a dependency of the root module) into
# bin/tools when missing, lints the chart, and runs the chart's Go tests,
# which render it and decode the manifests strictly into the Kubernetes API
# types (and, as root, check its capabilities on the running kernel).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
HELM_VERSION=${HELM_VERSION:-v3.22.0}
GO=${GO:-go}
tools=$root/bin/tools
helm=$tools/helm
# A helm built by `go install` reports no patch version: keep a stamp.
if ! [ -x "$helm" ] || [ "$(cat "$tools/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
	echo "building helm $HELM_VERSION into $tools"
	GOBIN=$tools GOFLAGS=-buildvcs=false "$GO" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	echo "$HELM_VERSION" >"$tools/helm.version"
fi
"$helm" lint --strict "$root/deploy/helm/originagent" --kube-version 1.33.0
# `make test` runs the Go tests with everything else (they find bin/tools/helm).
[ "${HELM_LINT_ONLY:-}" = 1 ] && exit 0
cd "$root"
HELM=$helm "$GO" test -count=1 ./deploy/helm/...
