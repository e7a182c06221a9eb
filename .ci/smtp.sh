# Sourced by .ci/run (issue 17 §1): a real SMTP server on loopback for the one-time code tests.
# aiosmtpd from PyPI, in its own virtual environment, with its Mailbox handler writing every mail
# to a maildir. Idempotent: an already running server on the port is reused. Exports what the
# tests read: SERMENT_TEST_SMTP_URL (smtp://127.0.0.1:PORT) and SERMENT_TEST_MAILDIR.
AIOSMTPD_VERSION=1.4.6
AIOSMTPD_VENV=${AIOSMTPD_VENV:-/opt/serment-aiosmtpd}
SMTP_PORT=${SMTP_PORT:-2525}
SMTP_MAILDIR=${SMTP_MAILDIR:-/tmp/serment-maildir-$SMTP_PORT}

if ! "$AIOSMTPD_VENV/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$AIOSMTPD_VENV"
    "$AIOSMTPD_VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
smtp_up() { "$AIOSMTPD_VENV/bin/python" - "$SMTP_PORT" <<'PY' >/dev/null 2>&1
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2)
s.noop()
s.quit()
PY
}
if ! smtp_up; then
    # A maildir: Python's mailbox.Maildir creates tmp/new/cur only for a directory that is absent.
    mkdir -p "$SMTP_MAILDIR/tmp" "$SMTP_MAILDIR/new" "$SMTP_MAILDIR/cur"
    nohup "$AIOSMTPD_VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$SMTP_MAILDIR" >"/tmp/serment-aiosmtpd-$SMTP_PORT.log" 2>&1 &
    for _ in $(seq 1 100); do
        smtp_up && break
        sleep 0.2
    done
    smtp_up || { cat "/tmp/serment-aiosmtpd-$SMTP_PORT.log"; exit 1; }
fi
echo "aiosmtpd $AIOSMTPD_VERSION listening on 127.0.0.1:$SMTP_PORT, maildir $SMTP_MAILDIR"
export SERMENT_TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
export SERMENT_TEST_MAILDIR="$SMTP_MAILDIR"
