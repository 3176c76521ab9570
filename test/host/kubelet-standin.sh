#!/bin/sh
# The real-host tier's kubelet stand-in, shipped as /usr/bin/kubelet in the Kubernetes sysext image the artifact
# mirror serves. It runs as the plan's real kubelet.service and does what a kubelet does before it runs pods:
#   1. waits for the container runtime endpoint the unit names and asks it for its version (ctr, from the containerd
#      image: the real containerd must answer);
#   2. TLS bootstrap: a new EC key and a CSR for system:node:<--hostname-override> (O=system:nodes), sent with the
#      bootstrap token from --bootstrap-kubeconfig as the bearer credential to the tier's CSR endpoint, which checks the
#      token and the pool's RBAC against the Kubernetes emulator (joinNode) and signs the CSR;
#   3. writes <cert-dir>/kubelet-client-current.pem and --kubeconfig, as the kubelet's certificate manager does, then
#      stays running. It does not run pods, report status, or rotate certificates.
set -eu

bootstrap=/var/lib/kubelet/bootstrap-kubeconfig
kubeconfig=/var/lib/kubelet/kubeconfig
certdir=/var/lib/kubelet/pki
runtime=unix:///run/containerd/containerd.sock
name=$(cat /proc/sys/kernel/hostname)
labels=
for arg in "$@"; do
  case "$arg" in
    --bootstrap-kubeconfig=*) bootstrap=${arg#*=} ;;
    --kubeconfig=*) kubeconfig=${arg#*=} ;;
    --cert-dir=*) certdir=${arg#*=} ;;
    --container-runtime-endpoint=*) runtime=${arg#*=} ;;
    --hostname-override=*) name=${arg#*=} ;;
    --node-labels=*) labels=${arg#*=} ;;
  esac
done
# CSR_URL and CSR_CA: where the tier's CSR endpoint listens (through the machine's bridge) and its CA.
. /usr/lib/flexnode-test/kubelet-standin.conf

socket=${runtime#unix://}
i=0
while [ ! -S "$socket" ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then echo "kubelet: no container runtime at $socket after 60 s" >&2; exit 1; fi
  sleep 0.1
done
echo "kubelet: container runtime at $socket: $(ctr --address "$socket" version 2>&1 | tr '\n' ' ')"

current=$certdir/kubelet-client-current.pem
if [ -s "$current" ]; then
  echo "kubelet: client certificate present; running as node $name"
  exec sleep infinity
fi

token=$(sed -n 's/^[[:space:]]*token:[[:space:]]*//p' "$bootstrap" | head -n 1)
if [ -z "$token" ]; then echo "kubelet: no bootstrap token in $bootstrap" >&2; exit 1; fi

umask 077
mkdir -p "$certdir"
key=$certdir/kubelet-client.key.new
openssl ecparam -name prime256v1 -genkey -noout -out "$key"
csr=$(openssl req -new -key "$key" -subj "/O=system:nodes/CN=system:node:$name" | base64 -w 0)
body=$(printf '{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"generateName":"node-csr-","annotations":{"flexnode.dev/node-labels":"%s"}},"spec":{"request":"%s","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}' "$labels" "$csr")
answer=$(curl -sS --fail-with-body --max-time 30 --cacert "$CSR_CA" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data "$body" "$CSR_URL/apis/certificates.k8s.io/v1/certificatesigningrequests") || { echo "kubelet: TLS bootstrap refused: $answer" >&2; rm -f "$key"; exit 1; }
cert=$(printf '%s' "$answer" | sed -n 's/.*"certificate":"\([A-Za-z0-9+\/=]*\)".*/\1/p' | base64 -d)
case "$cert" in *"BEGIN CERTIFICATE"*) ;; *) echo "kubelet: no certificate in the answer: $answer" >&2; rm -f "$key"; exit 1 ;; esac

stamp=$(date -u +%Y-%m-%d-%H-%M-%S)
{ printf '%s\n' "$cert"; cat "$key"; } > "$certdir/kubelet-client-$stamp.pem"
rm -f "$key"
ln -sfn "kubelet-client-$stamp.pem" "$current"
server=$(sed -n 's/^[[:space:]]*server:[[:space:]]*//p' "$bootstrap" | head -n 1)
cat > "$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: default-cluster
  cluster:
    server: $server
    certificate-authority: /etc/kubernetes/certs/ca.crt
users:
- name: default-auth
  user:
    client-certificate: $current
    client-key: $current
contexts:
- name: default-context
  context: { cluster: default-cluster, user: default-auth }
current-context: default-context
EOF
echo "kubelet: TLS bootstrap done; node $name registered"
exec sleep infinity
