//! Command-line definitions (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serment_server::config::reference::help;

/// Serment: end-to-end encrypted health documents. The server stores only ciphertext.
#[derive(Debug, Parser)]
#[command(name = "serment", version, about)]
pub(crate) struct Cli {
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Directory of the keystore (`keystore.srmk`). Default: `$HOME/.serment`.
    #[arg(long, global = true, env = "SERMENT_HOME")]
    pub(crate) home: Option<PathBuf>,
    /// A private CA certificate (PEM) to trust for the server, besides the webpki roots.
    /// `register` records it in the keystore, so later commands need not repeat it.
    #[arg(
        long,
        global = true,
        env = "SERMENT_CA_CERT",
        value_name = "FILE",
        visible_alias = "ca"
    )]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a server outside loopback (the bearer token and every request
    /// then cross the network unencrypted; only behind a TLS-terminating proxy you trust).
    #[arg(long, global = true)]
    pub(crate) insecure_http: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (SQLite and a blob directory under --data-dir).
    Serve(Box<ServeArgs>),
    /// Manage this user's identity.
    #[command(subcommand)]
    Id(IdCommand),
    /// Register this device with a server.
    Register {
        /// Server base URL, e.g. http://127.0.0.1:7878
        #[arg(long, env = "SERMENT_SERVER")]
        server: String,
    },
    /// Manage pinned contacts (trust on first use).
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Care teams: membership signed by an admin and logged, one key per epoch (PROTOCOL.md §12).
    #[command(subcommand)]
    Team(TeamCommand),
    /// Seal a file for contacts and upload it.
    Put {
        /// The file to seal.
        file: PathBuf,
        /// Recipient contact handles (repeatable). You can always read your own documents.
        #[arg(long = "to", num_args = 1..)]
        to: Vec<String>,
        /// Title (sealed; the server never sees it).
        #[arg(long)]
        title: Option<String>,
        /// MIME type (default: guessed from the extension).
        #[arg(long)]
        mime: Option<String>,
        /// Also share with a care team: one key wrap to the team's current epoch key, after its
        /// membership chain is verified in the log (PROTOCOL.md §12.3).
        #[arg(long = "to-team", value_name = "NAME")]
        to_team: Option<String>,
        /// Also seal for a patient who has not registered yet (PROTOCOL.md §15): a provisional
        /// recipient bound to this contact. The first time, prints a claim code for the patient
        /// (on the receipt, or by SMS); the server emails the one-time code that goes with it.
        /// Once the patient claimed (`serment claim`), seals straight to the patient's devices.
        #[arg(
            long = "to-unregistered",
            value_name = "email:ADDRESS[,ins:INS]",
            conflicts_with = "to_team"
        )]
        to_unregistered: Option<String>,
        /// With --to-unregistered: make a new provisional recipient and claim code for the
        /// contact even if an unclaimed one exists (the patient lost the receipt, a failed run's
        /// code was not kept, or the claim code is locked after wrong one-time codes). Earlier
        /// documents stay with the old recipient: send them again. Refused (exit 2) once the
        /// contact has claimed: its documents go straight to the claimant's devices.
        #[arg(long = "new-claim-code", requires = "to_unregistered")]
        new_claim_code: bool,
    },
    /// Claim the documents a lab sealed for you before you registered (PROTOCOL.md §15): with
    /// the claim code of your receipt, the server emails you a one-time code; with both, your
    /// device takes the provisional key, logs the claim, and re-wraps each document to your
    /// devices.
    Claim {
        /// The claim code printed on the receipt (XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX).
        /// `-` reads it from standard input; without --code on a terminal it is asked for
        /// (hidden), so it stays out of the shell history and the process list.
        #[arg(long)]
        code: Option<String>,
        /// The one-time code the server emailed (`-`: read from standard input, after the claim
        /// code if both are `-`). Without it, asks for one (and prompts for it, hidden, on a
        /// terminal; otherwise exits 0 once it is sent).
        #[arg(long)]
        otp: Option<String>,
    },
    /// Download, verify and decrypt a document.
    Get {
        /// Document id (32 hex digits).
        doc: String,
        /// Output file; written only if every check passes. An existing file is refused.
        #[arg(short, long)]
        output: PathBuf,
        /// Version (default: the newest).
        #[arg(long)]
        version: Option<u32>,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
        /// Open from this device's offline replica (`serment sync`), with no network at all and
        /// the same checks as online (PROTOCOL.md §14).
        #[arg(long)]
        offline: bool,
    },
    /// List documents this device authored or may read.
    Ls {
        /// List what this device's offline replica holds (`serment sync`), with no network.
        #[arg(long)]
        offline: bool,
    },
    /// Keep a local encrypted replica of every document this device may read, with the proofs
    /// to check them offline (`ls --offline`, `get --offline`; PROTOCOL.md §14). Incremental.
    Sync,
    /// Share a document you authored with more contacts.
    Share {
        /// Document id.
        doc: String,
        /// Contact handles (repeatable).
        #[arg(long = "to", num_args = 1.., required_unless_present = "to_team")]
        to: Vec<String>,
        /// A care team: one key wrap to its current epoch key (PROTOCOL.md §12.3).
        #[arg(long = "to-team", value_name = "NAME")]
        to_team: Option<String>,
        /// Version (default: the newest).
        #[arg(long)]
        version: Option<u32>,
    },
    /// Re-wrap documents you authored for recipients' post-quantum keys: each recipient device
    /// that now advertises an X-Wing key gets a hybrid wrap (logged) in place of its classical
    /// one, which the server deletes (PROTOCOL.md §7.2).
    Rewrap {
        /// Re-wrap with the hybrid post-quantum suite (X-Wing: ML-KEM-768 + X25519), the only
        /// re-wrap there is; required so that the command says what it does.
        #[arg(long, required = true)]
        pq: bool,
        /// Every document version you authored.
        #[arg(long, conflicts_with = "docs")]
        all: bool,
        /// Document ids (hex), every version of each.
        #[arg(required_unless_present = "all")]
        docs: Vec<String>,
    },
    /// Erase every version of a document you authored (blobs and keys deleted for everyone; the
    /// log keeps a tombstone with the reason code, PROTOCOL.md §11.3.2).
    Erase(crate::cmd::erase::EraseArgs),
    /// Show who fetched a document, as the server recorded it.
    Accesses {
        /// Document id.
        doc: String,
    },
    /// Split a FHIR R4 Bundle into documents, seal each for the recipients, and upload them.
    ImportFhir {
        /// The Bundle (JSON).
        bundle: PathBuf,
        /// Recipient contact handles (repeatable).
        #[arg(long = "to", num_args = 1.., required_unless_present = "to_unregistered")]
        to: Vec<String>,
        /// Also seal for a patient who has not registered yet, as `put --to-unregistered`.
        #[arg(long = "to-unregistered", value_name = "email:ADDRESS[,ins:INS]")]
        to_unregistered: Option<String>,
        /// With --to-unregistered: a new provisional recipient and claim code, as `put
        /// --new-claim-code`.
        #[arg(long = "new-claim-code", requires = "to_unregistered")]
        new_claim_code: bool,
        /// Import even if a reference does not resolve inside the bundle (each one is
        /// reported as a warning). Without it a dangling reference is an error (exit 2).
        #[arg(long)]
        allow_dangling: bool,
    },
    /// Seal a file offline into a container for recipients' device records (no server).
    Seal {
        /// The file to seal.
        input: PathBuf,
        /// The container to write; it appears only once sealing succeeded. An existing file is
        /// refused.
        #[arg(short, long)]
        output: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
        /// A recipient's device record file, from `serment id export-record` (repeatable).
        /// You can always open what you seal.
        #[arg(long = "to-record", num_args = 1..)]
        to_record: Vec<PathBuf>,
        /// Title (sealed).
        #[arg(long)]
        title: Option<String>,
        /// MIME type (sealed; default application/octet-stream).
        #[arg(long)]
        mime: Option<String>,
    },
    /// Verify and decrypt an offline container written by `serment seal`.
    Open {
        /// The container.
        input: PathBuf,
        /// Output file; written only if every check passes. An existing file is refused.
        #[arg(short, long)]
        output: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
        /// The author's device record file (default: this device must be the author).
        #[arg(long)]
        author_record: Option<PathBuf>,
    },
    /// Run the end-to-end demo: lab, GP and patient on an embedded server.
    Demo(DemoArgs),
    /// Run a witness: poll a server's log, check consistency, cosign checkpoints (PROTOCOL.md §11.8).
    Witness(crate::cmd::witness::WitnessArgs),
    /// The patient's page: check that the page a server serves is a bundle it logged.
    #[command(subcommand)]
    Web(crate::cmd::web::WebCommand),
    /// Audit a server's whole transparency log: recompute the tree, check every signature.
    VerifyLog(crate::cmd::log::VerifyLogArgs),
    /// Print the newest checkpoint this keystore verified for its server (a signed note), without
    /// contacting the server: what `verify-backup --checkpoint` and `restore --checkpoint` take
    /// after an attack, when the server's own checkpoint is not to be trusted.
    PinnedCheckpoint(crate::cmd::log::PinnedCheckpointArgs),
    /// Back up a server's store to storage it cannot erase (docs/BACKUP.md): continuous, or
    /// one increment with --once.
    Backup(crate::cmd::backup::BackupArgs),
    /// Check a backup against the log key, trusting none of its claims; exit 4 naming what is
    /// missing or altered.
    VerifyBackup(crate::cmd::backup::VerifyBackupArgs),
    /// Rebuild a server from a backup, verified first (docs/BACKUP.md §7): into an empty data
    /// directory or database; a backup older than a proven checkpoint needs --accept-loss.
    Restore(crate::cmd::restore::RestoreArgs),
    /// After an announced restore from a backup (LOG ROLLBACK or LOG FORK): show what the
    /// server's loss statement says this device lost, and with --statement ID (the id the
    /// operator announced) follow the restored log (PROTOCOL.md §11.11).
    AcceptRollback(crate::cmd::rollback::AcceptRollbackArgs),
    /// Show who opened your documents, each line proven in the log (--fhir: FHIR R4 AuditEvents).
    Audit(crate::cmd::log::AuditArgs),
    /// Link a second device (a short one-time code), join as one, list your devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// On a new machine, when every device (or the passphrase) is lost: enrol a new device with
    /// the recovery code `serment id recovery-code` showed (PROTOCOL.md §4.2). Creates the
    /// keystore (passphrase as for `id new`); reads every document sent before; the recovery is
    /// logged, seen by your other devices; the used code is burnt and a new one is shown once.
    Recover(RecoverArgs),
    /// Social recovery (PROTOCOL.md §4.3): as a recovery contact, approve a request to recover
    /// someone (check it with them by phone first); on one of your devices, veto a request to
    /// recover you.
    #[command(subcommand)]
    Recovery(RecoveryCommand),
    /// Revoke one of your devices (a signed log entry); it can no longer log in or receive keys.
    /// Revoking another device also rotates the identity key, which every linked device holds
    /// (PROTOCOL.md §4.1): the other devices are re-certified under the new key.
    RevokeDevice(crate::cmd::log::RevokeArgs),
    /// Replace your identity key (signed by the old and new keys, in the log).
    RotateIdentity,
    /// Require witness cosignatures on this server's checkpoints.
    Witnesses(crate::cmd::log::WitnessesArgs),
    /// Print version, git commit, protocol and suites.
    Version,
    /// TLS helpers for a trial (a throwaway CA and a loopback server certificate).
    #[command(subcommand)]
    Tls(TlsCommand),
    /// An unlock agent, in the manner of ssh-agent: unlock the keystore once, and `put`, `get`,
    /// `seal` and `open` run in it without asking for the passphrase (PROTOCOL.md §13).
    #[command(subcommand)]
    Agent(AgentCommand),
}

/// `serment tls ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TlsCommand {
    /// Write a throwaway private CA (ca.pem) and a server certificate it issued for localhost,
    /// 127.0.0.1 and ::1 (server.pem, server.key), to try `serve --tls-cert server.pem --tls-key
    /// server.key` and `register --ca-cert ca.pem` on one machine. Not for production: use your
    /// organisation's CA there. Existing files are refused unless --force.
    TestPki {
        /// Directory to write ca.pem, server.pem and server.key into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Validity in days (1 to 397).
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Unlock the keystore (asking for the passphrase once) and serve it in the background on a
    /// Unix socket only you can reach: `$SERMENT_AGENT_SOCK`, else
    /// `$XDG_RUNTIME_DIR/serment/agent.sock`, else `/tmp/serment-<uid>/agent.sock`.
    Start {
        /// Idle time after which the agent forgets (zeroizes) the keys and answers "locked":
        /// e.g. `90s`, `15m`, `1h`.
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        ttl: String,
        /// Internal: run as the agent itself, reading the passphrase from stdin.
        #[arg(long, hide = true)]
        serve: bool,
    },
    /// Make the agent zeroize its keys and exit.
    Stop,
    /// Whether an agent answers, for which keystore, and whether it is locked.
    Status,
}

impl Command {
    /// The commands that run a server or a long-lived process with its own graceful shutdown.
    pub(crate) fn runs_a_server(&self) -> bool {
        matches!(
            self,
            Command::Serve(_) | Command::Demo(_) | Command::Witness(_) | Command::Backup(_)
        )
    }
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[arg(long, env = "SERMENT_DATA_DIR", value_name = "DIR", help = help("data_dir"))]
    pub(crate) data_dir: Option<PathBuf>,
    #[arg(long, env = "SERMENT_BLOB_URL", value_name = "URL", help = help("blob_url"))]
    pub(crate) blob_url: Option<String>,
    #[arg(long, env = "SERMENT_LISTEN", value_name = "ADDR", help = help("listen"))]
    pub(crate) listen: Option<SocketAddr>,
    #[arg(long, env = "SERMENT_TLS_CERT", value_name = "FILE", help = help("tls_cert"))]
    pub(crate) tls_cert: Option<PathBuf>,
    #[arg(long, env = "SERMENT_TLS_KEY", value_name = "FILE", help = help("tls_key"))]
    pub(crate) tls_key: Option<PathBuf>,
    #[arg(long, env = "SERMENT_DATABASE_URL", value_name = "URL", help = help("database_url"))]
    pub(crate) database_url: Option<String>,
    #[arg(long, env = "SERMENT_MAX_BLOB_BYTES", value_name = "BYTES", help = help("max_blob_bytes"))]
    pub(crate) max_blob_bytes: Option<u64>,
    #[arg(long, env = "SERMENT_MAX_JSON_BYTES", value_name = "BYTES", help = help("max_json_bytes"))]
    pub(crate) max_json_bytes: Option<usize>,
    #[arg(long, env = "SERMENT_TOKEN_TTL_SECS", value_name = "SECS", help = help("token_ttl_secs"))]
    pub(crate) token_ttl_secs: Option<u64>,
    #[arg(long, env = "SERMENT_WITNESSES", value_name = "VKEYS", value_delimiter = ',', help = help("witnesses"))]
    pub(crate) witnesses: Option<Vec<String>>,
    #[arg(long, env = "SERMENT_HEADER_READ_TIMEOUT_SECS", value_name = "SECS", help = help("header_read_timeout_secs"))]
    pub(crate) header_read_timeout_secs: Option<u64>,
    #[arg(long, env = "SERMENT_BODY_IDLE_TIMEOUT_SECS", value_name = "SECS", help = help("body_idle_timeout_secs"))]
    pub(crate) body_idle_timeout_secs: Option<u64>,
    #[arg(long, env = "SERMENT_KEEP_ALIVE_TIMEOUT_SECS", value_name = "SECS", help = help("keep_alive_timeout_secs"))]
    pub(crate) keep_alive_timeout_secs: Option<u64>,
    #[arg(long, env = "SERMENT_MAX_CONNECTIONS", value_name = "N", help = help("max_connections"))]
    pub(crate) max_connections: Option<usize>,
    #[arg(long, env = "SERMENT_MAX_CONNECTIONS_PER_IP", value_name = "N", help = help("max_connections_per_ip"))]
    pub(crate) max_connections_per_ip: Option<usize>,
    #[arg(long, env = "SERMENT_SHUTDOWN_GRACE_MS", value_name = "MS", help = help("shutdown_grace_ms"))]
    pub(crate) shutdown_grace_ms: Option<u64>,
    #[arg(long, env = "SERMENT_AUTH_REQUESTS_PER_MINUTE", value_name = "N", help = help("auth_requests_per_minute"))]
    pub(crate) auth_requests_per_minute: Option<u32>,
    #[arg(long, env = "SERMENT_AUTH_FAILURES_PER_MINUTE", value_name = "N", help = help("auth_failures_per_minute"))]
    pub(crate) auth_failures_per_minute: Option<u32>,
    #[arg(long, env = "SERMENT_REPLAY_CACHE_ENTRIES", value_name = "N", help = help("replay_cache_entries"))]
    pub(crate) replay_cache_entries: Option<usize>,
    #[arg(long, env = "SERMENT_PENDING_UPLOAD_GRACE_SECS", value_name = "SECS", help = help("pending_upload_grace_secs"))]
    pub(crate) pending_upload_grace_secs: Option<u64>,
    #[arg(long, env = "SERMENT_MAX_PENDING_UPLOADS", value_name = "N", help = help("max_pending_uploads"))]
    pub(crate) max_pending_uploads: Option<u64>,
    #[arg(long, env = "SERMENT_MAX_PENDING_UPLOAD_BYTES", value_name = "BYTES", help = help("max_pending_upload_bytes"))]
    pub(crate) max_pending_upload_bytes: Option<u64>,
    #[arg(long, env = "SERMENT_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true, help = help("metrics_token"))]
    pub(crate) metrics_token: Option<String>,
    #[arg(long, env = "SERMENT_BACKUP_URL", value_name = "URL", help = help("backup_url"))]
    pub(crate) backup_url: Option<String>,
    #[arg(long, env = "SERMENT_BACKUP_INTERVAL_SECS", value_name = "SECS", help = help("backup_interval_secs"))]
    pub(crate) backup_interval_secs: Option<u64>,
    #[arg(long, env = "SERMENT_SMTP_URL", value_name = "URL", hide_env_values = true, help = help("smtp_url"))]
    pub(crate) smtp_url: Option<String>,
    #[arg(long, env = "SERMENT_SMTP_FROM", value_name = "ADDRESS", help = help("smtp_from"))]
    pub(crate) smtp_from: Option<String>,
    #[arg(long, env = "SERMENT_PROVISIONAL_ADDRESS_DAYS", value_name = "DAYS", help = help("provisional_address_days"))]
    pub(crate) provisional_address_days: Option<u64>,
    /// Create a new, empty store when the data directory does not exist or is empty (needed on
    /// the first start unless --data-dir, SERMENT_DATA_DIR or the TOML `data_dir` names it; later
    /// starts need no flag).
    #[arg(long)]
    pub(crate) init: bool,
    /// Optional TOML configuration file (flags and SERMENT_* variables override it); every key is
    /// listed in docs/CONFIG.md.
    #[arg(long, env = "SERMENT_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Create an identity and its first device, in a new passphrase-protected keystore.
    New {
        /// Your public handle in the directory: 1-64 of [a-z0-9._-]. Patients should use a pseudonym.
        #[arg(long)]
        name: String,
        /// Display name, kept in the keystore and sealed into documents you author.
        #[arg(long)]
        display: Option<String>,
        /// Keystore KDF cost: `default` (Argon2id 64 MiB, t=3) or `floor` (OWASP's minimum,
        /// 19 MiB, t=2: for constrained devices; faster to unlock, weaker against guessing).
        #[arg(long, value_enum, default_value_t = KdfCost::Default)]
        kdf: KdfCost,
    },
    /// Show this identity.
    Show,
    /// Give this device a post-quantum X-Wing key (ML-KEM-768 + X25519): a new record signed by
    /// the identity, logged; from then on wraps to this device are hybrid, and classical ones
    /// made later are refused (PROTOCOL.md §7.1). New identities have one already.
    Upgrade,
    /// Make a recovery code (shown once; replaces the previous one, which stops working): a
    /// recovery device of this identity, logged and caught up, whose keys and the identity key
    /// are escrowed on the server under the code (Argon2id). `serment recover --code` uses it on
    /// a new machine when every device is lost (PROTOCOL.md §4.2).
    RecoveryCode {
        /// Escrow KDF cost: `default` (Argon2id 64 MiB, t=3) or `floor` (19 MiB, t=2). The
        /// code carries 128 random bits, so the cost only slows a server that guesses.
        #[arg(long, value_enum, default_value_t = KdfCost::Default)]
        kdf: KdfCost,
        /// The code replaced was seen, photographed or lost: first rotate the identity key,
        /// retiring the earlier codes' recovery devices (your other devices are re-certified).
        /// Every earlier escrow stays in the server's backups for their whole retention and
        /// holds the identity key of its time: without a rotation the old code still opens
        /// your current identity key from any copy of a backup. Asked on a terminal when a
        /// code is replaced.
        #[arg(long)]
        rotate: bool,
    },
    /// Social recovery, k-of-n (PROTOCOL.md §4.3): trusted contacts (a GP, a relative) who,
    /// K of them together, can let you back in when every device is lost.
    #[command(subcommand)]
    RecoveryContacts(RecoveryContactsCommand),
    /// Write this device's record (signed by the identity key) to a file, for `seal --to-record`.
    ExportRecord {
        /// The file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// `serment id recovery-contacts`.
#[derive(Debug, Subcommand)]
pub(crate) enum RecoveryContactsCommand {
    /// Name your recovery contacts (replaces any previous set, whose secret is burnt): a fresh
    /// secret protects an escrow of your identity key; it is split K-of-n (Shamir) and each
    /// share is wrapped to every current device of its contact, taken from their key history
    /// in the log. The set is a logged entry signed by your identity key.
    Add {
        /// The contacts' handles (2 to 16, not yours).
        #[arg(required = true, num_args = 1..)]
        handles: Vec<String>,
        /// How many contacts must approve a recovery (2 ≤ K ≤ number of contacts).
        #[arg(long)]
        threshold: u8,
        /// How long after a request your devices can still veto it: `72h` (default), `3d`,
        /// `36h`, or seconds; at least 24 hours (the protocol's floor: a shorter one is
        /// refused, by this client, the server and your contacts' clients).
        #[arg(long, default_value = "72h")]
        waiting_period: String,
    },
    /// Show your current recovery contacts, as the log holds them.
    List,
}

/// `serment recovery`.
#[derive(Debug, Subcommand)]
pub(crate) enum RecoveryCommand {
    /// As a recovery contact of HANDLE: show the request (who, the new device's fingerprint,
    /// when), then approve it: a logged approval, and your share re-wrapped to that device.
    /// Call the person first and compare the fingerprint.
    Approve {
        /// The handle to recover.
        #[arg(long)]
        handle: String,
        /// The request id they read to you (32 hex).
        #[arg(long)]
        request: String,
    },
    /// On one of your devices: veto a request to recover you (logged); its completion is
    /// refused.
    Veto {
        /// The request id (`serment device list` shows pending ones).
        #[arg(
            long,
            required_unless_present = "all_pending",
            conflicts_with = "all_pending"
        )]
        request: Option<String>,
        /// Veto every pending request to recover you (REVIEW5 U1: many requests filed by a
        /// stranger, one veto entry each).
        #[arg(long)]
        all_pending: bool,
    },
}

/// `serment recover`.
#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// The recovery code, e.g. 7K3M-Q9ZX-... (8 groups of 4; case, spaces and dashes ignored).
    /// `-` reads it from standard input; without --code on a terminal it is asked for
    /// (hidden), so it stays out of the shell history and the process list.
    #[arg(long, conflicts_with = "social")]
    pub(crate) code: Option<String>,
    /// Recover with your recovery contacts instead of a code: logs a request and prints its id
    /// and this machine's fingerprint for your contacts (`serment recovery approve`). Then,
    /// after K approvals and the waiting period: `serment recover --social --complete`.
    #[arg(long)]
    pub(crate) social: bool,
    /// With --social: complete the pending request of this machine.
    #[arg(long, requires = "social")]
    pub(crate) complete: bool,
    /// With --complete: the request id (checked against the pending request).
    #[arg(long, requires = "complete")]
    pub(crate) request: Option<String>,
    /// Your handle (not needed with --complete).
    #[arg(long)]
    pub(crate) handle: Option<String>,
    /// Server base URL (not needed with --complete).
    #[arg(long, env = "SERMENT_SERVER")]
    pub(crate) server: Option<String>,
    /// The server's log key as its operator publishes it (the line `serment serve` prints):
    /// pinned instead of whatever the server serves to this new machine (not with --complete,
    /// which uses the pin taken at the request). Without it the key served is pinned and
    /// printed, to compare.
    #[arg(long, conflicts_with = "complete")]
    pub(crate) log_key: Option<String>,
    /// Keystore KDF cost, as for `id new` (the new code's escrow uses the same).
    #[arg(long, value_enum, default_value_t = KdfCost::Default)]
    pub(crate) kdf: KdfCost,
    /// Retire every other device of the identity (the lost ones): implies --rotate, since
    /// they held the identity key (as `revoke-device` of another device rotates it).
    #[arg(long)]
    pub(crate) revoke_others: bool,
    /// Rotate the identity key (logged, kind 2): every other device is retired, and whoever
    /// holds the old key (a thief of the old code and escrow) can certify nothing more.
    /// The default of `--social --complete` (see `--keep-identity`).
    #[arg(long)]
    pub(crate) rotate: bool,
    /// With --social --complete: keep the identity key instead of rotating it (the default
    /// rotates: the escrow the K contacts' shares opened holds the identity seed, and a copy
    /// of it served to anyone would otherwise stay a key to the identity; REVIEW4 T1).
    #[arg(long, requires = "complete", conflicts_with_all = ["rotate", "revoke_others"])]
    pub(crate) keep_identity: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// On an existing device: show a one-time pairing code, wait for the new device, certify it
    /// (a logged record signed by the identity key) and re-wrap every document this device can
    /// read for it (PROTOCOL.md §4.1).
    Link,
    /// On the new device: enrol with the code `serment device link` shows. Creates the keystore
    /// (passphrase as for `id new`).
    Join {
        /// The pairing code, e.g. 1234-5678-9012-3456.
        #[arg(long)]
        code: String,
        /// Server base URL (the one the linking device uses).
        #[arg(long, env = "SERMENT_SERVER")]
        server: String,
        /// Keystore KDF cost, as for `id new`.
        #[arg(long, value_enum, default_value_t = KdfCost::Default)]
        kdf: KdfCost,
    },
    /// This identity's devices, from the transparency log; revoked ones are marked.
    List,
    /// On an existing device: give another current device of yours what `device link` gives a
    /// new one (PROTOCOL.md §4.1, §12.3): a re-wrap of every document this device can read, and
    /// the key of every care-team epoch it holds. For a device linked before team keys were
    /// handed over, or one that missed documents.
    CatchUp {
        /// The device id (64 hex, from `serment device list`).
        device: String,
    },
}

/// Argon2id cost of a new keystore (PROTOCOL.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KdfCost {
    /// 64 MiB, t=3.
    Default,
    /// 19 MiB, t=2 (OWASP's minimum, the format's floor).
    Floor,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TeamCommand {
    /// Create a team; you are its first admin.
    New {
        /// Team name: 1-64 of [a-z0-9._-] (public, like handles).
        name: String,
    },
    /// Add a contact to a team (admins only); the current epoch key is wrapped to its devices.
    Add {
        /// Team name.
        name: String,
        /// The contact's handle.
        handle: String,
        /// Make the new member an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Remove a member (admins only): a new epoch key, wrapped to the remaining members; new
    /// documents are unreadable to the removed member.
    Remove {
        /// Team name.
        name: String,
        /// The member's handle.
        handle: String,
    },
    /// Show a team's membership, verified in the log.
    Show {
        /// Team name.
        name: String,
    },
    /// List your teams.
    List,
    /// Open a new epoch (admins only); with --rewrap, re-wrap the documents you shared with the
    /// team to it, so that removed members lose them too.
    Rotate {
        /// Team name.
        name: String,
        /// Re-wrap the DEKs of your documents shared with the team to the new epoch.
        #[arg(long)]
        rewrap: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContactCommand {
    /// Fetch a contact's keys and pin its identity key (trust on first use).
    Add {
        /// The contact's handle.
        name: String,
    },
    /// Show a contact's fingerprint, refreshed from the log, to compare out of band; --confirm
    /// marks it verified (refused if the key changed since it was last shown).
    Verify {
        /// The contact's handle.
        name: String,
        /// Mark the contact as verified after comparing fingerprints.
        #[arg(long)]
        confirm: bool,
    },
    /// List pinned contacts.
    List,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// FHIR R4 Bundle files (repeatable). Default: the bundles under examples/fhir/.
    #[arg(long = "input")]
    pub(crate) input: Vec<PathBuf>,
    /// Server data directory (default: a fresh temporary directory).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
}
