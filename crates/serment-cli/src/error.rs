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
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("demo check failed: {0}")]
    DemoFailed(String),
}

impl CliError {
    /// Exit codes: 2 input, 3 keystore, 4 integrity, 5 server/network, 6 not found, 7 demo check, 1 other.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Client(c) => c.exit_code(),
            CliError::Server(_) => 5,
            CliError::Fhir { .. } | CliError::Input(_) => 2,
            CliError::Io { .. } => 1,
            CliError::DemoFailed(_) => 7,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            CliError::Client(c) => c.code(),
            CliError::Server(_) => "server",
            CliError::Fhir { .. } => "fhir",
            CliError::Input(_) => "input",
            CliError::Io { .. } => "io",
            CliError::DemoFailed(_) => "demo_failed",
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
