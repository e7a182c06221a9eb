//! CLI errors and exit codes.

use serment_client::ClientError;

/// Anything a CLI command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("server: {0}")]
    Server(String),
    #[error("FHIR bundle {path}: {source}")]
    Fhir {
        path: String,
        #[source]
        source: serment_fhir::FhirError,
    },
    #[error("{0}")]
    Input(String),
    /// Only the author may share; names the author by handle when known.
    #[error("{0}")]
    NotAuthor(String),
    /// A passphrase could not be read, or is refused for a new keystore.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// A wrong, used or expired one-time code (a wrong secret, like a passphrase: exit 3; the
    /// newcomer's N9: it read "passphrase: wrong one-time code").
    #[error("{0}")]
    WrongCode(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A local file or directory problem described in full by the message (exit 1).
    #[error("{0}")]
    Local(String),
    #[error("demo check failed: {0}")]
    DemoFailed(String),
    /// `verify-log` found problems in the log (listed above, or in `report` with `--json`).
    #[error("TRANSPARENCY LOG CHECK FAILED: {problems} problem(s) in the log (listed above)")]
    LogInvalid {
        /// How many problems.
        problems: usize,
        /// The whole report (`--json` prints it beside the error, in the one object).
        report: Box<serde_json::Value>,
    },
    /// `verify-backup` found the backup incomplete or altered (its report, for `--json`), or
    /// `backup` found its target written by something else (no report) (docs/BACKUP.md).
    #[error("BACKUP CHECK FAILED: {message}")]
    BackupInvalid {
        /// What failed.
        message: String,
        /// `verify-backup`'s whole report (`--json` prints it beside the error, in the one object).
        report: Option<Box<serde_json::Value>>,
    },
    /// `sync` refused versions or documents whose checks failed (listed above, or in `report`
    /// with `--json`); the rest was synced and the replica's manifest written (PROTOCOL.md §14).
    #[error(
        "SYNC INCOMPLETE: {refused} version(s) or document(s) refused and not stored (listed \
         above); everything else is synced"
    )]
    SyncRefused {
        /// How many refusals.
        refused: usize,
        /// The exit code: 4 when any check refused, else that of the first refusal.
        exit: i32,
        /// The whole sync report (`--json` prints it beside the error, in the one object).
        report: Box<serde_json::Value>,
    },
    /// `audit` found accesses the reading device did not co-sign (PROTOCOL.md §11.5).
    /// With `--json`, the audit's report rides beside the error (one object on stdout).
    #[error(
        "{count} access(es) in the log were not co-signed by the reading device: a stolen \
         credential or the server's own record (listed above)"
    )]
    Unreceipted {
        /// How many.
        count: usize,
        /// The audit's report (`serment audit --json`'s object).
        report: Box<serde_json::Value>,
    },
    /// `audit` found sealed documents downloaded by this device's recovery device (REVIEW3 S1):
    /// no honest flow downloads a blob as the recovery device (a recovery only fetches its key
    /// wraps to re-wrap them), so whoever holds the recovery code read them.
    #[error(
        "{count} sealed document(s) were downloaded by your recovery device (listed above): \
         someone used your recovery code to read them. If it was not you, run `serment \
         rotate-identity` and then `serment id recovery-code`"
    )]
    RecoveryDeviceRead {
        /// How many.
        count: usize,
        /// The audit's report, as for [`CliError::Unreceipted`].
        report: Box<serde_json::Value>,
    },
    /// `web verify`: the page served matches no bundle entry of the log (its hash, hex).
    #[error(
        "the page this server serves (bundle hash {0}) is in no bundle entry of the log: it may \
         have been modified for you"
    )]
    BundleNotLogged(String),
    /// A command the unlock agent ran for this process failed there (PROTOCOL.md §13): its exit
    /// code, error code and message, as the agent sent them.
    #[error("{message}")]
    Agent {
        exit: i32,
        code: String,
        message: String,
    },
}

impl CliError {
    /// Exit codes: 2 input, 3 keystore, 4 integrity, 5 server/network, 6 not found, 7 demo check, 1 other.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Client(c) => c.exit_code(),
            CliError::Server(_) => 5,
            CliError::Fhir { .. } | CliError::Input(_) | CliError::NotAuthor(_) => 2,
            CliError::Passphrase(_) | CliError::WrongCode(_) => 3,
            CliError::Io { .. } | CliError::Local(_) => 1,
            CliError::DemoFailed(_) => 7,
            CliError::Unreceipted { .. }
            | CliError::RecoveryDeviceRead { .. }
            | CliError::LogInvalid { .. }
            | CliError::BackupInvalid { .. }
            | CliError::BundleNotLogged(_) => 4,
            CliError::Agent { exit, .. } | CliError::SyncRefused { exit, .. } => *exit,
        }
    }

    pub(crate) fn code(&self) -> std::borrow::Cow<'static, str> {
        if let CliError::Agent { code, .. } = self {
            return code.clone().into();
        }
        match self {
            CliError::Client(c) => c.code(),
            CliError::Server(_) => "server",
            CliError::Fhir { .. } => "fhir",
            CliError::Input(_) => "input",
            CliError::NotAuthor(_) => "not_author",
            CliError::Passphrase(_) => "passphrase",
            CliError::WrongCode(_) => "wrong_code",
            CliError::Io { .. } | CliError::Local(_) => "io",
            CliError::DemoFailed(_) => "demo_failed",
            CliError::Unreceipted { .. } => "unreceipted_access",
            CliError::RecoveryDeviceRead { .. } => "recovery_device_read",
            CliError::LogInvalid { .. } => "log_invalid",
            CliError::BackupInvalid { .. } => "backup_invalid",
            CliError::BundleNotLogged(_) => "bundle_not_logged",
            CliError::SyncRefused { .. } => "sync_refused",
            CliError::Agent { .. } => "agent",
        }
        .into()
    }

    /// What to do next, when the error alone does not say (printed after it).
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Client(ClientError::Log(
                serment_core::Error::Rollback { .. } | serment_core::Error::Fork { .. },
            )) => Some(
                "if your server's operator announced a restore from a backup (with a loss \
                 statement id), `serment accept-rollback` (a witness: `serment witness ... \
                 --accept-rollback ID`) shows or accepts what the server says was lost \
                 (docs/BACKUP.md §7); otherwise treat this as an attack on the log",
            ),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub(crate) type CliResult<T> = Result<T, CliError>;
