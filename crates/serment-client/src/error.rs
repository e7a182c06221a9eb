//! Client errors. The server is treated as an adversary: anything it sends that does not check out
//! is a typed error here, never a panic.

use thiserror::Error;

/// Errors from the Serment client library.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A cryptographic or format check failed: tampering, a wrong key, a forged or truncated blob.
    #[error("integrity check failed: {0}")]
    Integrity(#[source] serment_core::Error),
    /// The keystore could not be opened (wrong passphrase or corrupted file) or has weak parameters.
    #[error("keystore: {0}")]
    Keystore(#[source] serment_core::Error),
    /// The keystore file does not exist.
    #[error("no keystore at {0}: run `serment id new` first")]
    NoKeystore(String),
    /// A keystore already exists where a new one would be created.
    #[error("a keystore already exists at {0}")]
    KeystoreExists(String),
    /// The server answered with an error.
    #[error("server refused the request ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable error code from the server.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The server sent something malformed (bad JSON, bad base64, a wrong-length field).
    #[error("malformed response from the server: {0}")]
    BadResponse(String),
    /// The contact is not pinned in the keystore.
    #[error("unknown contact {0:?}: add it with `serment contact add {0}` first")]
    UnknownContact(String),
    /// The directory served an identity key other than the one pinned for this contact.
    #[error(
        "KEY SUBSTITUTION: the server presents another identity key for {handle:?} than the one pinned \
         (pinned {pinned}, served {served}); refusing to continue"
    )]
    KeySubstitution {
        /// The contact.
        handle: String,
        /// Pinned identity id (hex).
        pinned: String,
        /// Served identity id (hex).
        served: String,
    },
    /// After an accepted loss (PROTOCOL.md §11.11): the restored log shows current devices of a
    /// contact that were not current when this device last verified it, in the range the restore
    /// lost; each may have been revoked there (a stolen device back). Nothing is wrapped to them
    /// until the user checks with the contact and confirms (`serment contact verify HANDLE
    /// --confirm`).
    #[error(
        "{handle}'s devices {devices:?} were not current when this device last verified {handle}, \
         in the log range the restore lost: a revocation may have been lost with it. Ask \
         {handle} (out of band) whether they still hold them; if so, run `serment contact verify \
         {handle} --confirm`, else ask them to revoke them again"
    )]
    RestoredDevices {
        /// The contact.
        handle: String,
        /// The device ids (hex).
        devices: Vec<String>,
    },
    /// A document was authored by a device that belongs to no pinned contact.
    #[error(
        "the author device {0} belongs to no pinned contact: add the author as a contact first"
    )]
    UnknownAuthor(String),
    /// The transparency log's answer does not check out: a bad checkpoint signature, a missing or
    /// invalid inclusion or consistency proof, a rollback, a fork, a missing witness quorum, a
    /// broken history chain (PROTOCOL.md §11.7). Always a hard error.
    #[error("TRANSPARENCY LOG CHECK FAILED: {0}")]
    Log(#[source] serment_core::Error),
    /// The server presents another log key than the one pinned for it.
    #[error(
        "LOG KEY CHANGED: the server presents log key {served}, but {pinned} is pinned (the log \
         key changed: a new or replaced server, or an attack; nothing it proves can be trusted)"
    )]
    LogKeyChanged {
        /// The pinned verifier key.
        pinned: String,
        /// The served verifier key.
        served: String,
    },
    /// A write this client made (a share, a revocation, ...) is not in the log as it should be.
    #[error("OWN WRITE MISSING FROM THE LOG: {0}")]
    OwnWriteMissing(String),
    /// Two views of the log that cannot both be true (a split view caught by gossip).
    #[error("SPLIT VIEW: {0}")]
    SplitView(String),
    /// The log shows no active device for this contact: every device was revoked.
    #[error(
        "{0:?} has no active device: every device of this identity was revoked (proven in the \
         log); it cannot receive documents until it enrols a new one"
    )]
    NoActiveDevice(String),
    /// A care team's current epoch key reached a device that has since been revoked
    /// (PROTOCOL.md §12.4): nothing more may be wrapped to it until an admin opens a new epoch.
    #[error(
        "team {team}: its current key (epoch {epoch}) was delivered to a device since revoked \
         (member {members}); nothing more can be shared with the team until one of its admins runs \
         `serment team rotate {team}`"
    )]
    TeamKeyRevoked {
        /// The team.
        team: String,
        /// Its current epoch.
        epoch: u32,
        /// The members with a device revoked since, comma-separated.
        members: String,
    },
    /// The server says this device was revoked: it can no longer log in.
    #[error(
        "this device was revoked (a signed entry in the transparency log): it can no longer log in \
         or read; to use this machine again, link it as a new device from one still active \
         (`serment device link` there, `serment device join` here, with another SERMENT_HOME)"
    )]
    DeviceRevoked,
    /// Only a document's author may share it (add recipients); this device is not its author.
    #[error(
        "only the author can share document {doc_id}: it was authored by device {author_device}; \
         ask its author to share it"
    )]
    NotAuthor {
        /// The document (hex).
        doc_id: String,
        /// The author device the server names (hex).
        author_device: String,
    },
    /// The document exists but is not shared with this device (no wrap for it, not its author).
    #[error("not shared with you: {0}")]
    NotShared(String),
    /// Data the transparency log proves exists (a sealed blob, this device's key wrap) that the
    /// server did not produce: lost or withheld by the operator (server code `data_missing`).
    #[error(
        "WITHHELD DATA: {0} is withheld: the transparency log proves it exists, but the server \
         did not produce it"
    )]
    Withheld(String),
    /// The document was erased: its tombstone (log entry kind 9) is proven in the log and was
    /// signed by a device of its author (PROTOCOL.md §11.3.2).
    #[error(
        "document {doc_id} was erased (reason {reason_code}: {reason}); its tombstone is proven          in the transparency log"
    )]
    Erased {
        /// The document (hex).
        doc_id: String,
        /// The reason code (1 to 4).
        reason_code: u8,
        /// The reason's name (`patient-request`, `sent-in-error`, `retention-ended`, `other`).
        reason: &'static str,
    },
    /// The document was lost in a restore this device accepted (PROTOCOL.md §11.11): the
    /// accepted loss statement named it, and the restored server does not serve it (404).
    #[error(
        "document {doc_id} was lost in the restore you accepted (loss statement {statement}): \
         {next}"
    )]
    LostInRestore {
        /// The document (hex).
        doc_id: String,
        /// The accepted loss statement's id (hex).
        statement: String,
        /// What to do: ask its author (by handle, when this device knows it) to send it again.
        next: String,
    },
    /// This device's registration was in the range a restore lost (PROTOCOL.md §11.11): the
    /// restored server does not know it (newcomer 6 N3). The message says what to do.
    #[error("{message}")]
    RegistrationLost {
        /// The accepted loss statement's id (its first 16 hex digits), if this device
        /// accepted one.
        statement: Option<String>,
        /// The whole message, with what to do.
        message: String,
    },
    /// The offline replica holds no copy of the document asked for (never synced, synced after,
    /// or erased: PROTOCOL.md §14).
    #[error("not in the offline replica: {0}")]
    NotInReplica(String),
    /// No device of this keystore is registered with the server.
    #[error("not registered with a server: run `serment register --server URL`")]
    NotRegistered,
    /// Invalid input from the caller (command line, file).
    #[error("invalid input: {0}")]
    Input(String),
    /// The output file exists and overwriting was not asked for.
    #[error("{0} already exists: choose another output file, or pass --force to replace it")]
    OutputExists(String),
    /// Local I/O failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// A process exit code for the CLI: 2 input, 3 keystore/passphrase, 4 integrity or key
    /// substitution, 5 server or network, 6 not found, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            // Not registered: a step the user skipped (`serment register`), not a server fault.
            ClientError::Input(_)
            | ClientError::UnknownContact(_)
            | ClientError::NotAuthor { .. }
            | ClientError::NotRegistered
            | ClientError::RegistrationLost { .. } => 2,
            ClientError::Keystore(_)
            | ClientError::NoKeystore(_)
            | ClientError::KeystoreExists(_)
            | ClientError::DeviceRevoked => 3,
            ClientError::NoActiveDevice(_) | ClientError::TeamKeyRevoked { .. } => 6,
            ClientError::Integrity(_)
            | ClientError::KeySubstitution { .. }
            | ClientError::RestoredDevices { .. }
            | ClientError::UnknownAuthor(_)
            | ClientError::Log(_)
            | ClientError::LogKeyChanged { .. }
            | ClientError::OwnWriteMissing(_)
            | ClientError::SplitView(_) => 4,
            ClientError::Withheld(_) => 4,
            ClientError::Server { code, .. } if code == "data_missing" => 4,
            ClientError::NotShared(_)
            | ClientError::Erased { .. }
            | ClientError::LostInRestore { .. }
            | ClientError::NotInReplica(_) => 6,
            ClientError::Server { code, .. } if code == "not_shared" => 6,
            ClientError::Server { status: 404, .. } => 6,
            ClientError::Server { .. }
            | ClientError::Transport(_)
            | ClientError::BadResponse(_) => 5,
            ClientError::Io { .. } | ClientError::OutputExists(_) => 1,
        }
    }

    /// A stable machine-readable code for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Integrity(_) => "integrity",
            ClientError::Keystore(_) => "keystore",
            ClientError::NoKeystore(_) => "no_keystore",
            ClientError::KeystoreExists(_) => "keystore_exists",
            ClientError::Server { code, .. } if code == "data_missing" => "withheld",
            ClientError::Server { code, .. } if code == "not_shared" => "not_shared",
            ClientError::Server { .. } => "server",
            ClientError::Transport(_) => "transport",
            ClientError::BadResponse(_) => "bad_response",
            ClientError::UnknownContact(_) => "unknown_contact",
            ClientError::KeySubstitution { .. } => "key_substitution",
            ClientError::RestoredDevices { .. } => "restored_devices",
            ClientError::UnknownAuthor(_) => "unknown_author",
            ClientError::Log(e) => match e {
                serment_core::Error::Rollback { .. } => "log_rollback",
                serment_core::Error::Fork { .. } => "log_fork",
                serment_core::Error::NoQuorum { .. } => "log_no_quorum",
                serment_core::Error::BadInclusionProof => "log_bad_inclusion_proof",
                serment_core::Error::BadConsistencyProof => "log_bad_consistency_proof",
                serment_core::Error::History { .. } => "log_history",
                serment_core::Error::LossStatement { .. } => "loss_statement_refused",
                _ => "log",
            },
            ClientError::LogKeyChanged { .. } => "log_key_changed",
            ClientError::OwnWriteMissing(_) => "own_write_missing",
            ClientError::SplitView(_) => "split_view",
            ClientError::NotRegistered => "not_registered",
            ClientError::RegistrationLost { .. } => "registration_lost",
            ClientError::NotAuthor { .. } => "not_author",
            ClientError::NoActiveDevice(_) => "no_active_device",
            ClientError::TeamKeyRevoked { .. } => "team_key_revoked",
            ClientError::DeviceRevoked => "device_revoked",
            ClientError::NotShared(_) => "not_shared",
            ClientError::Erased { .. } => "erased",
            ClientError::LostInRestore { .. } => "lost_in_restore",
            ClientError::NotInReplica(_) => "not_in_replica",
            ClientError::Withheld(_) => "withheld",
            ClientError::Input(_) => "input",
            ClientError::Io { .. } => "io",
            ClientError::OutputExists(_) => "output_exists",
        }
    }

    /// On a read path (`get`), the server's typed answers about a document as client errors:
    /// `data_missing` is [`ClientError::Withheld`], `not_shared` is [`ClientError::NotShared`]
    /// (PROTOCOL.md §8.3). Any other error is returned unchanged.
    #[must_use]
    pub fn on_read(self) -> Self {
        match self {
            ClientError::Server { code, message, .. } if code == "data_missing" => {
                ClientError::Withheld(message)
            }
            ClientError::Server { code, message, .. } if code == "not_shared" => {
                ClientError::NotShared(message)
            }
            other => other,
        }
    }

    /// [`ClientError::RegistrationLost`] for a device the restored `server` does not know:
    /// after the loss statement `statement` (id, hex) was accepted, or (`None`) before any
    /// was, from a server that serves loss statements.
    pub(crate) fn registration_lost(server: &str, statement: Option<&str>) -> Self {
        let statement = statement.map(|s| s.get(..16).unwrap_or(s).to_owned());
        let message = match &statement {
            Some(id) => format!(
                "this device's registration was lost in the restore you accepted (loss \
                 statement {id}): the restored server does not know this device. Run `serment \
                 register --server {server}` again now (the same keys; your contacts see no \
                 change); until then anyone may take your handle"
            ),
            None => format!(
                "the server {server} does not know this device, and it says its log was restored \
                 from a backup: this device's registration is in the lost range. Run `serment \
                 accept-rollback` to see what was lost; accepting with the id your operator \
                 announced (`--statement ID`) registers this device again. Do it now: until then \
                 anyone may take your handle"
            ),
        };
        ClientError::RegistrationLost { statement, message }
    }

    /// [`ClientError::LostInRestore`] for `doc_id`, named by the accepted statement `statement`
    /// with the author handle `author` (`""` unknown) as this device (`own`) knew it.
    pub(crate) fn lost_in_restore(doc_id: &str, statement: &str, author: &str, own: &str) -> Self {
        let next = if author.is_empty() {
            "ask its author to send it again".to_owned()
        } else if author == own {
            "this device sealed it: send it again".to_owned()
        } else {
            format!("ask {author} to send it again")
        };
        ClientError::LostInRestore {
            doc_id: doc_id.to_owned(),
            statement: statement.get(..16).unwrap_or(statement).to_owned(),
            next,
        }
    }

    /// [`ClientError::Erased`] of a checked tombstone.
    pub(crate) fn erased(t: &serment_core::log::erasure::Erasure) -> Self {
        ClientError::Erased {
            doc_id: t.doc_id.to_string(),
            reason_code: t.reason.code(),
            reason: t.reason.name(),
        }
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Shorthand result type.
pub type Result<T> = std::result::Result<T, ClientError>;
