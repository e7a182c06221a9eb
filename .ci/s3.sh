# Sourced by .ci/run (issue 11): an S3-compatible server on loopback for the object-store tests.
# moto's server mode, from PyPI, in its own virtual environment (versioning, Object Lock and
# conditional `If-None-Match: *` writes are what Serment relies on). Idempotent: an already running
# server on the port is reused. Exports what the tests read:
#   SERMENT_TEST_S3=1, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
#   AWS_ALLOW_HTTP (loopback only).
MOTO_VERSION=5.2.6
MOTO_VENV=${MOTO_VENV:-/opt/serment-moto}
MOTO_PORT=${MOTO_PORT:-9000}

if ! "$MOTO_VENV/bin/moto_server" --help >/dev/null 2>&1; then
    # Debian's python3 makes virtual environments only with python3-venv (ensurepip).
    if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
if ! curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
    nohup "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/serment-moto.log 2>&1 &
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null || { cat /tmp/serment-moto.log; exit 1; }
fi
echo "moto $MOTO_VERSION listening on 127.0.0.1:$MOTO_PORT"
export SERMENT_TEST_S3=1
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=serment-ci AWS_SECRET_ACCESS_KEY=serment-ci AWS_REGION=us-east-1
export AWS_ALLOW_HTTP=true
