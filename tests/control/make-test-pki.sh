#!/usr/bin/env bash
# make-test-pki.sh DIR: a throw-away PKI for TLS tests, made with openssl.
#   ca.pem/ca.key            the CA the tests trust
#   server.pem/server.key    signed by it, for 127.0.0.1 and localhost
#   client.pem/client.key    signed by it, for mTLS
#   other-ca.pem/other-ca.key an unrelated CA: trusting it must fail closed
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
for ca in ca other-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=daemonlet-test-$ca" -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
done
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=daemonlet-test-client -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null
