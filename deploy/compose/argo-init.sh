#!/bin/sh
# Runs once per `docker compose up`, in the rancher/k3s image (its kubectl), against the k3s service:
# installs Argo Workflows' quick-start, points its artifact repository at the compose MinIO, exposes
# the Argo Server on a NodePort, applies pygeoapi-argo's RBAC (deploy/kubernetes) and the sample
# WorkflowTemplates, and writes the pygeoapi-argo service account's token where pygeoapi reads it.
# Every step is idempotent.
set -eu
k() { kubectl --kubeconfig /output/kubeconfig.yaml --server https://k3s:6443 "$@"; }

k create namespace argo --dry-run=client -o yaml | k apply -f -
k apply -n argo -f "https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/quick-start-minimal.yaml"
# The compose MinIO holds the artifacts; the quick-start's in-cluster MinIO is not needed.
if k -n argo get deployment/minio >/dev/null 2>&1; then k -n argo scale deployment/minio --replicas=0; fi
k -n argo create secret generic pygeoapi-minio-cred --from-literal=accesskey="${MINIO_ROOT_USER}" \
  --from-literal=secretkey="${MINIO_ROOT_PASSWORD}" --dry-run=client -o yaml | k apply -f -
k apply -f /deploy/compose/artifact-repositories.yaml
k -n argo patch service argo-server --type merge \
  -p '{"spec": {"type": "NodePort", "ports": [{"name": "web", "port": 2746, "targetPort": 2746, "nodePort": 32746}]}}'

k apply -f /deploy/kubernetes/namespace.yaml -f /deploy/kubernetes/rbac.yaml
k apply -n argo -f /templates/

k -n argo rollout status deployment/workflow-controller --timeout=600s
k -n argo rollout status deployment/argo-server --timeout=600s

# Kubernetes fills in the token Secret shortly after it is created. The file is readable by
# pygeoapi's uid 10001; only argo-init and pygeoapi mount this volume.
token=""
tries=0
while [ -z "$token" ]; do
  tries=$((tries + 1))
  [ "$tries" -le 120 ] || { echo "argo-init: no token in secret pygeoapi/pygeoapi-argo-token" >&2; exit 1; }
  sleep 1
  token=$(k -n pygeoapi get secret pygeoapi-argo-token -o go-template='{{if .data.token}}{{.data.token | base64decode}}{{end}}')
done
umask 022
printf '%s\n' "$token" > /token/token
echo "argo-init: Argo ${ARGO_VERSION} ready, sample templates applied"
