#!/usr/bin/env bash
# Serves the local PostgreSQL over TLS with a certificate of a throwaway CA, so that the tests
# can connect with sslmode=require and sslmode=verify-full (tests/e2e/postgres_tls.rs).
#
# Run as root on the machine of the local cluster. Idempotent: an existing CA and certificate
# are kept, so a second run changes nothing. Writes into $ACCESSBOT_TEST_TLS_DIR (default
# /etc/ssl/accessbot-test, the path the tests read):
#   ca.pem             the CA the server certificate is signed by (world-readable)
#   untrusted-ca.pem   a second CA that signed nothing: a client trusting only it must refuse
#   server.pem/.key    the server's certificate (SAN DNS:localhost, IP:127.0.0.1) and key
set -euo pipefail

dir="${ACCESSBOT_TEST_TLS_DIR:-/etc/ssl/accessbot-test}"
psql=(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atq -v ON_ERROR_STOP=1)
mkdir -p "$dir"
chmod 755 "$dir"
cd "$dir"

new_ca() { # name, subject
  [ -s "$1.pem" ] && [ -s "$1.key" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.pem" 2>/dev/null
  chmod 600 "$1.key"
  chmod 644 "$1.pem"
}
new_ca ca "accessbot test CA"
new_ca untrusted-ca "accessbot untrusted test CA"

if ! { [ -s server.pem ] && [ -s server.key ] && openssl verify -CAfile ca.pem server.pem >/dev/null 2>&1; }; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile server.ext -out server.pem 2>/dev/null
  rm -f server.csr server.ext
fi
# PostgreSQL refuses a key that others may read, and must own it to read it.
chown postgres:postgres server.key server.pem
chmod 600 server.key
chmod 644 server.pem

if [ "$("${psql[@]}" -c 'SHOW ssl_cert_file')" != "$dir/server.pem" ] \
   || [ "$("${psql[@]}" -c 'SHOW ssl_key_file')" != "$dir/server.key" ] \
   || [ "$("${psql[@]}" -c 'SHOW ssl')" != "on" ]; then
  "${psql[@]}" -c "ALTER SYSTEM SET ssl_cert_file = '$dir/server.pem'"
  "${psql[@]}" -c "ALTER SYSTEM SET ssl_key_file = '$dir/server.key'"
  "${psql[@]}" -c "ALTER SYSTEM SET ssl = on"
  "${psql[@]}" -c "SELECT pg_reload_conf()" >/dev/null
fi
# A reload that failed (an unreadable key, say) keeps the old settings and only logs: check.
for _ in $(seq 1 20); do
  [ "$("${psql[@]}" -c 'SHOW ssl_cert_file')" = "$dir/server.pem" ] && break
  sleep 0.2
done
if [ "$("${psql[@]}" -c 'SHOW ssl_cert_file')" != "$dir/server.pem" ]; then
  echo "pg-tls: PostgreSQL did not take $dir/server.pem (see its log)" >&2
  exit 1
fi
echo "pg-tls: PostgreSQL serves TLS with $dir/server.pem (CA: $dir/ca.pem)"
