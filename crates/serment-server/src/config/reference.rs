//! The configuration reference (issue 18 item 4): one entry per [`Config`] field, from which
//! `docs/CONFIG.md` ([`markdown`]) and the `serve --help` texts ([`help`]) are generated. Defaults
//! come from [`Config::default`] and bounds from the constants of [`crate::config`], so neither
//! can drift; a test checks that every field of [`Config`] has exactly one entry here.
//!
//! Each key `k` is the TOML key `k`, the environment variable `SERMENT_<K>` (upper case) and the
//! flag `serve --<k with dashes>`.

use super::*;

/// One setting of [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key, which is also the [`Config`] field name.
    pub key: &'static str,
    /// The unit or kind of value (`seconds`, `bytes`, `path`, ...).
    pub unit: &'static str,
    /// What it does, in one paragraph of Markdown.
    pub doc: &'static str,
}

impl Setting {
    /// The environment variable: `SERMENT_` and the key in upper case.
    pub fn env(&self) -> String {
        format!("SERMENT_{}", self.key.to_ascii_uppercase())
    }

    /// The `serve` flag: `--` and the key with dashes.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// The default, as written in TOML (`(none)` when unset, `[]` for an empty list).
    pub fn default_text(&self) -> String {
        let value = serde_json::to_value(Config::default())
            .ok()
            .and_then(|v| v.get(self.key).cloned())
            .unwrap_or(serde_json::Value::Null);
        match value {
            serde_json::Value::Null => "(none)".to_owned(),
            serde_json::Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        }
    }

    /// The accepted values.
    pub fn bounds(&self) -> String {
        match self.key {
            "data_dir" => "a directory path, not empty".into(),
            "blob_url" => "s3://BUCKET[/PREFIX] or file:///ABSOLUTE/DIR".into(),
            "database_url" => "postgres://… , postgresql://… or sqlite://PATH".into(),
            "listen" => "IP:port (port 0 picks a free port)".into(),
            "tls_cert" | "tls_key" => "a readable PEM file; give tls_cert and tls_key together".into(),
            "max_blob_bytes" => format!("{MIN_BLOB_BYTES} to {MAX_BLOB_BYTES}"),
            "max_json_bytes" => format!("{MIN_JSON_BYTES} to {MAX_JSON_BYTES}"),
            "token_ttl_secs" => format!("{MIN_TOKEN_TTL_SECS} to {MAX_TOKEN_TTL_SECS}"),
            "witnesses" => "a list of C2SP cosignature/v1 verifier keys (`<name>+<key id hex>+<base64 key>`); as a flag or variable, comma-separated".into(),
            "header_read_timeout_secs" => {
                format!("{MIN_HEADER_READ_TIMEOUT_SECS} to {MAX_HEADER_READ_TIMEOUT_SECS}")
            }
            "body_idle_timeout_secs" => {
                format!("{MIN_BODY_IDLE_TIMEOUT_SECS} to {MAX_BODY_IDLE_TIMEOUT_SECS}")
            }
            "keep_alive_timeout_secs" => {
                format!("{MIN_KEEP_ALIVE_TIMEOUT_SECS} to {MAX_KEEP_ALIVE_TIMEOUT_SECS}")
            }
            "max_connections" => format!("1 to {MAX_CONNECTIONS}"),
            "max_connections_per_ip" => "1 to max_connections".into(),
            "shutdown_grace_ms" => format!("0 to {MAX_SHUTDOWN_GRACE_MS}"),
            "auth_requests_per_minute" | "auth_failures_per_minute" => {
                format!("1 to {MAX_AUTH_PER_MINUTE}")
            }
            "replay_cache_entries" => {
                format!("{MIN_REPLAY_CACHE_ENTRIES} to {MAX_REPLAY_CACHE_ENTRIES}")
            }
            "pending_upload_grace_secs" => {
                format!("{MIN_PENDING_GRACE_SECS} to {MAX_PENDING_GRACE_SECS}")
            }
            "max_pending_uploads" => "at least 1".into(),
            "max_pending_upload_bytes" => format!("at least {MIN_BLOB_BYTES}"),
            "metrics_token" => format!(
                "{MIN_METRICS_TOKEN_CHARS} to {MAX_METRICS_TOKEN_CHARS} visible ASCII characters"
            ),
            "backup_url" => "file:///ABSOLUTE/DIR or s3://BUCKET[/PREFIX]".into(),
            "backup_interval_secs" => {
                format!("{MIN_BACKUP_INTERVAL_SECS} to {MAX_BACKUP_INTERVAL_SECS}")
            }
            "smtp_url" => "smtp://HOST[:PORT][?tls=required] or smtps://HOST[:PORT], optionally with USER:PASSWORD@; file:///DIR for the demo".into(),
            "smtp_from" => "an email address".into(),
            "provisional_address_days" => format!("1 to {MAX_PROVISIONAL_ADDRESS_DAYS}"),
            _ => String::new(),
        }
    }
}

/// Every setting of [`Config`], in the order of its fields.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "data_dir",
        unit: "path",
        doc: "Directory holding `serment.db`, `blobs/` and `tmp/` (mode 0700). `serve` prints it as an absolute path at startup. It refuses to create a new store in a directory that does not exist or is empty unless this setting is given explicitly (flag, variable or TOML) or `serve --init` is passed; an existing non-empty directory without `serment.db` is always refused.",
    },
    Setting {
        key: "blob_url",
        unit: "URL",
        doc: "Where sealed blobs are stored. `s3://BUCKET[/PREFIX]`: S3-compatible object storage (AWS S3, MinIO, Ceph, Garage...), with the endpoint, region and credentials from the standard `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` variables (`AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint); objects are created conditionally (`If-None-Match: *`), never overwritten. `file:///DIR`: a local directory. Unset: `blobs/` in `data_dir`.",
    },
    Setting {
        key: "listen",
        unit: "socket address",
        doc: "Address and port to listen on.",
    },
    Setting {
        key: "tls_cert",
        unit: "path",
        doc: "PEM certificate chain, leaf first. With `tls_key`, the server speaks HTTPS only (TLS 1.3, rustls with the ring provider), prints an `https://` URL, and sends `Strict-Transport-Security: max-age=31536000; includeSubDomains` on every response. Without both, plain HTTP: for loopback, or behind a reverse proxy that terminates TLS (the proxy must then send that header itself: nginx `add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;`).",
    },
    Setting {
        key: "tls_key",
        unit: "path",
        doc: "PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Checked at startup: readable, a key, and the key of the leaf certificate.",
    },
    Setting {
        key: "database_url",
        unit: "URL",
        doc: "The metadata database. `postgres://USER:PASSWORD@HOST:PORT/DB` selects PostgreSQL (migrations run at startup; TLS with rustls and ring when the URL asks for it: `?sslmode=verify-full&sslrootcert=/path/ca.pem`); several `serve` instances may share one database and one log (give each the same log key, `SERMENT_LOG_KEY` or `log.key`). `sqlite://PATH` selects SQLite at PATH. Unset: SQLite in `data_dir/serment.db`.",
    },
    Setting {
        key: "max_blob_bytes",
        unit: "bytes",
        doc: "Largest sealed document accepted by `POST /v1/blobs`.",
    },
    Setting {
        key: "max_json_bytes",
        unit: "bytes",
        doc: "Largest JSON request body.",
    },
    Setting {
        key: "token_ttl_secs",
        unit: "seconds",
        doc: "Lifetime of a bearer token (PROTOCOL.md §8.2).",
    },
    Setting {
        key: "witnesses",
        unit: "list of verifier keys",
        doc: "Witnesses whose cosignatures the transparency log accepts. Empty: any witness's valid cosignature is accepted, first come first kept.",
    },
    Setting {
        key: "header_read_timeout_secs",
        unit: "seconds",
        doc: "Time a client has to send a complete request head, from the moment the connection waits for one (a new connection, or a kept-alive one between requests). With TLS, the handshake gets the same time. Slow-header clients are closed after it.",
    },
    Setting {
        key: "body_idle_timeout_secs",
        unit: "seconds",
        doc: "A request body that stalls (no byte received) this long fails its request, and the connection is closed. A response the client stops reading (the socket stays full) this long has its connection dropped.",
    },
    Setting {
        key: "keep_alive_timeout_secs",
        unit: "seconds",
        doc: "A kept-alive connection with no request in flight is closed after this idle time (or after `header_read_timeout_secs`, whichever is smaller).",
    },
    Setting {
        key: "max_connections",
        unit: "connections",
        doc: "Most open client connections; a connection over the cap is closed at once.",
    },
    Setting {
        key: "max_connections_per_ip",
        unit: "connections",
        doc: "Most open connections from one client address (an IPv6 address counts by its /64). Behind a reverse proxy every connection comes from the proxy's address: raise it to `max_connections` there.",
    },
    Setting {
        key: "shutdown_grace_ms",
        unit: "milliseconds",
        doc: "On SIGTERM or SIGINT the server stops accepting, closes idle connections, and gives in-flight requests this long before dropping their connections; then the database is closed.",
    },
    Setting {
        key: "auth_requests_per_minute",
        unit: "requests per minute",
        doc: "Login requests (`POST /v1/auth/challenge` and `/v1/auth/token`) allowed per client address and per device id, in bursts of up to this many; beyond, `429 too_many_requests` with `Retry-After`.",
    },
    Setting {
        key: "auth_failures_per_minute",
        unit: "failures per minute",
        doc: "Failed logins (bad signature, unknown/used/expired challenge, unknown or revoked device) allowed per client address and per device id, in bursts of up to this many; beyond, every login request from that address or for that device gets `429` with `Retry-After` until the budget refills. Each failure is logged at WARN (device id prefix, peer address, reason; never a secret).",
    },
    Setting {
        key: "replay_cache_entries",
        unit: "entries",
        doc: "Signed requests remembered for replay detection (PROTOCOL.md §8.2.1), in the metadata database so that every instance on it refuses a replay: each `(keyid, nonce)` for as long as its `created` is inside the 300 s window, at most this many rows after each 30 s maintenance tick. Past it, the oldest are dropped and requests created before them are refused as stale (the client signs again); nothing is ever accepted twice.",
    },
    Setting {
        key: "pending_upload_grace_secs",
        unit: "seconds",
        doc: "How long a blob uploaded with `POST /v1/blobs` may wait for a commit that references it; the garbage collector (every quarter of this, 15 s to 5 min) then deletes it, row and file.",
    },
    Setting {
        key: "max_pending_uploads",
        unit: "uploads",
        doc: "Uploads that no commit references yet one device may hold; one more is refused with `429 pending_quota`.",
    },
    Setting {
        key: "max_pending_upload_bytes",
        unit: "bytes",
        doc: "Bytes of uploads that no commit references yet one device may hold, checked against the declared `Content-Length` of the next upload; past it, `429 pending_quota`.",
    },
    Setting {
        key: "metrics_token",
        unit: "secret",
        doc: "Turns on `GET /metrics` (Prometheus text format): requests by route template and status, latency, commit batch sizes, log size, database pool use, blob bytes. Metrics reveal traffic patterns, so the scraper must send `Authorization: Bearer <token>` (compared in constant time; 401 otherwise). Unset: `/metrics` answers 404. Prefer the variable or a TOML file readable by the server only: a flag shows in the process list.",
    },
    Setting {
        key: "backup_url",
        unit: "URL",
        doc: "Runs the continuous backup inside `serve` (docs/BACKUP.md; the same loop as `serment backup`): log entries, sealed blobs, team key wraps and checkpoints, with one manifest per increment signed by the log key. `file:///DIR`: append-only files (created once, fsynced, read-only; on the same host it does not survive root on that host). `s3://BUCKET[/PREFIX]`: a bucket with versioning and Object Lock in compliance mode, credentials allowed `s3:PutObject` only (README, \"Backup\"). Unset: no backup inside the server.",
    },
    Setting {
        key: "backup_interval_secs",
        unit: "seconds",
        doc: "Time between backup increments; an increment is taken only when the log grew or its newest checkpoint gained cosignatures. The recovery point objective is this interval plus one increment's time.",
    },
    Setting {
        key: "smtp_url",
        unit: "URL",
        doc: "The SMTP relay that emails the one-time codes of provisional recipients (a lab's `put --to-unregistered`, a patient's `serment claim`; PROTOCOL.md §15). `smtp://HOST:PORT` sends in plain text (a relay on loopback only), `?tls=required` adds STARTTLS, `smtps://` is TLS from the start (rustls, Mozilla's roots); `USER:PASSWORD@` logs in. `file:///DIR` writes each mail to a new file in DIR instead (what `serment demo` uses; not for a real deployment). The mail holds the one-time code only, never a document id. Unset: the provisional routes answer `503 smtp_not_configured`. Prefer the variable or a TOML file: a password in a flag shows in the process list.",
    },
    Setting {
        key: "smtp_from",
        unit: "address",
        doc: "The `From:` address of the one-time code emails.",
    },
    Setting {
        key: "provisional_address_days",
        unit: "days",
        doc: "How long the contact address of a provisional recipient nobody has claimed is kept. Past it the server erases the address (checked every 30 s), answers 410 to a one-time code request for that claim code, and the lab issues a new claim code (`put --to-unregistered CONTACT --new-claim-code`). A claim erases the address at once.",
    },
];

/// The setting named `key`, if any.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The `serve --help` text of setting `key`: its description, unit, bounds and default.
pub fn help(key: &str) -> String {
    match setting(key) {
        Some(s) => format!(
            "{} Unit: {}; accepted: {}. [default: {}]",
            strip_markdown(s.doc),
            s.unit,
            strip_markdown(&s.bounds()),
            s.default_text()
        ),
        None => String::new(),
    }
}

fn strip_markdown(s: &str) -> String {
    s.replace('`', "")
}

/// Running behind a reverse proxy that terminates TLS (issue 10 §1).
const PROXY_SECTION: &str = r#"
## Behind a reverse proxy (nginx)

Serment can terminate TLS itself (`tls_cert`, `tls_key`). To let nginx do it instead, keep the
server on loopback in plain HTTP and stream bodies through the proxy (sealed documents can be
gigabytes):

```nginx
server {
    listen 443 ssl;
    server_name serment.example.org;
    ssl_certificate     /etc/ssl/serment/fullchain.pem;
    ssl_certificate_key /etc/ssl/serment/privkey.pem;
    ssl_protocols       TLSv1.3;
    # Serment sends HSTS itself only when it terminates TLS: here the proxy does.
    add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;

    client_max_body_size    16g;    # at least max_blob_bytes
    proxy_request_buffering off;    # stream uploads to Serment
    proxy_buffering         off;    # stream downloads to clients
    proxy_http_version      1.1;    # needed for unbuffered (chunked) uploads
    client_header_timeout   10s;    # header_read_timeout_secs
    client_body_timeout     30s;    # body_idle_timeout_secs
    keepalive_timeout       5s;     # keep_alive_timeout_secs

    location /v1/auth/ {
        limit_req zone=serment_login burst=20 nodelay;
        proxy_pass http://127.0.0.1:7878;
    }
    location / {
        proxy_pass http://127.0.0.1:7878;
    }
}
# in the http block: limit_req_zone $binary_remote_addr zone=serment_login:10m rate=60r/m;
```

Serment trusts no `Forwarded` or `X-Forwarded-For` header, so behind a proxy every connection
comes from the proxy's address: set `max_connections_per_ip` to `max_connections`, and limit
logins per client address at the proxy as above (Serment's per-device login limits still apply;
its per-address limits then count the proxy as one client, so raise `auth_requests_per_minute` and
`auth_failures_per_minute` to what the proxy lets through).
"#;

/// The text of `docs/CONFIG.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from serment_server::config::reference::SETTINGS and Config::default().\n     \
         Do not edit: run `SERMENT_BLESS=1 cargo test -p serment-server --test config_reference`. -->\n\n\
         `serment serve` takes each setting from, in order: its flag, its `SERMENT_*` environment \
         variable, the TOML file named by `--config FILE` (or `SERMENT_CONFIG`), then the default \
         below. Unknown TOML keys are refused. Every value is checked at startup; an invalid one \
         stops the server with exit code 2 and names the setting.\n\n\
         `serve --init` (flag only) allows creating a new store in a data directory that does not \
         exist or is empty when `data_dir` was not given explicitly; later starts need no flag.\n\n\
         | key | flag | environment variable | default | unit | accepted |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | `{}` | {} | {} |\n",
            s.key,
            s.flag(),
            s.env(),
            s.default_text(),
            s.unit,
            s.bounds().replace('|', "\\|")
        ));
    }
    out.push_str("\n## Settings\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "\n### `{}`\n\n{}\n\nDefault `{}`; {}: {}.\n",
            s.key,
            s.doc,
            s.default_text(),
            s.unit,
            s.bounds()
        ));
    }
    out.push_str(PROXY_SECTION);
    out.push_str(
        "\n## Example\n\n```toml\n\
         data_dir = \"/var/lib/serment\"\n\
         listen = \"0.0.0.0:7878\"\n\
         tls_cert = \"/etc/serment/fullchain.pem\"\n\
         tls_key = \"/etc/serment/privkey.pem\"\n\
         witnesses = []\n\
         ```\n",
    );
    out
}
