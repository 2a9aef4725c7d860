#!/usr/bin/env bash
# make status: one screen on a deployed app, read with kubectl: the release (revision,
# image, replicas ready), its pods, the migration Job, the host, and the certificate
# (issuer requested, Ready, expiry). Usage: status.sh APP NAMESPACE SETTINGS [APPLYSET].
# Exit 1 when the app is not deployed (or the cluster cannot be read).
set -uo pipefail
app=$1
namespace=$2
settings=$3
applyset=${4:-$app}
k=(kubectl)
[[ -n $namespace ]] && k+=(--namespace "$namespace")
shown_ns=${namespace:-$(kubectl config view --minify -o 'jsonpath={..namespace}' 2>/dev/null)}

echo "app $app in namespace ${shown_ns:-default}, settings $settings$([[ -f $settings ]] || echo ' (none yet)')"

# One line per field, in a fixed order: revision, image, desired, updated, ready.
if ! release=$("${k[@]}" get deployment "$app-app" -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}{"\n"}{.spec.template.spec.containers[0].image}{"\n"}{.spec.replicas}{"\n"}{.status.updatedReplicas}{"\n"}{.status.readyReplicas}{"\n"}'); then
    echo "release:     not deployed (no deployment.apps/$app-app: make deploy)"
    exit 1
fi
{ read -r revision; read -r image; read -r desired; read -r updated; read -r ready; } <<<"$release"
printf 'release:     deployment.apps/%s%s, image %s\n' "$app-app" "${revision:+ revision $revision}" "$image"
# The newest good release kapply recorded, and the one after it when that failed.
history=$(kapply ${namespace:+--namespace "$namespace"} --applyset "$applyset" --history 2>/dev/null)
current=$(awk '$3 == "deployed" { print "revision " $1 " of " $2 }' <<<"$history")
failed=$(awk 'NR > 1 { last = $3; rev = $1 } END { if (last == "failed") print "revision " rev " failed (make history)" }' <<<"$history")
printf 'revision:    %s%s\n' "${current:-none recorded}" "${failed:+; $failed}"
printf 'pods ready:  %s/%s (%s up to date)\n' "${ready:-0}" "${desired:-0}" "${updated:-0}"
"${k[@]}" get pods -l "app.kubernetes.io/name=$app,app.kubernetes.io/component=web" 2>&1 | sed 's/^/  /'

jobs=$("${k[@]}" get jobs -l "app.kubernetes.io/name=$app,app.kubernetes.io/component=migrate" \
    -o 'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.succeeded}{" "}{.status.failed}{"\n"}{end}' 2>/dev/null)
while read -r name succeeded failed; do
    [[ -z $name ]] && continue
    if [[ ${succeeded:-0} -ge 1 ]]; then state=complete
    elif [[ ${failed:-0} -ge 1 ]]; then state="failed ($failed)"
    else state=running; fi
    printf 'migration:   job.batch/%s %s\n' "$name" "$state"
done <<<"$jobs"

host=$("${k[@]}" get ingress "$app-ingress" -o 'jsonpath={.spec.rules[0].host}' 2>/dev/null)
issuer=$("${k[@]}" get ingress "$app-ingress" -o 'jsonpath={.metadata.annotations.cert-manager\.io/cluster-issuer}' 2>/dev/null)
[[ -n $host ]] && printf 'host:        https://%s (ingress %s-ingress, issuer requested: %s)\n' "$host" "$app" "${issuer:--}"

# The Certificate ingress-shim made for the Ingress's TLS Secret.
if cert=$("${k[@]}" get certificate "$app-tls" -o 'jsonpath={.spec.issuerRef.kind}{" "}{.spec.issuerRef.name}{"\n"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{.status.notAfter}{"\n"}{.status.renewalTime}{"\n"}' 2>/dev/null); then
    { read -r cert_issuer; read -r cert_ready; read -r not_after; read -r renewal; } <<<"$cert"
    printf 'certificate: %s-tls ready %s, issuer %s, expires %s, renews %s\n' "$app" "${cert_ready:-Unknown}" \
        "${cert_issuer:--}" "${not_after:--}" "${renewal:--}"
else
    printf 'certificate: %s-tls not found (cert-manager not installed, or its ingress-shim has not made it yet: kubectl -n cert-manager get pods)\n' "$app"
fi
