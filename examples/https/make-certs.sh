#!/bin/sh
# make-certs.sh DIR [NAME...]: a throw-away certificate authority
# (DIR/ca.pem, DIR/ca.key) and, for each NAME (default: localhost), a
# certificate DIR/NAME.pem with its key DIR/NAME.key signed by it, valid
# for that name (localhost also for 127.0.0.1 and ::1). ECDSA P-256 keys.
# An existing CA in DIR is reused. DAYS (default 30) sets the validity;
# DAYS=-1 makes certificates that have already expired.
set -eu
dir=${1:?usage: make-certs.sh DIR [NAME...]}
shift
[ $# -gt 0 ] || set -- localhost
days=${DAYS:-30}
mkdir -p "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
if [ ! -f "$dir/ca.pem" ]; then
  key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -out "$dir/ca.pem" -days 3650 \
    -subj "/CN=eddy throw-away CA" 2>/dev/null
fi
for name in "$@"; do
  san="DNS:$name"
  [ "$name" = localhost ] && san="$san,IP:127.0.0.1,IP:::1"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$san" > "$dir/$name.ext"
  key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$days" -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
done
