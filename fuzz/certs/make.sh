#!/usr/bin/env bash
# Regenerate the fuzz targets' test PKI in this directory, with the openssl
# command line: a CA (ca.pem), a server certificate for localhost /
# 127.0.0.1 / ::1 (server.pem, server.key) and a client certificate
# (client.pem, client.key), all P-256, valid for 100 years. Test-only keys:
# they protect nothing. The CA's key is thrown away once it has signed.
#
# After regenerating, rebuild the TLS seeds (they carry the server
# certificate): cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -subj "/CN=reseau fuzz CA" -days 36500 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# sign NAME SUBJECT EXTENSIONS
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days 36500 -extfile "$tmp/$1.ext" -out "$1.pem" 2>/dev/null
}

sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
sign client "/CN=reseau fuzz client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

openssl verify -CAfile ca.pem server.pem client.pem
