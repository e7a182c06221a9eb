//! The log's checkpoint key (PROTOCOL.md §11.4): an Ed25519 seed in `<data dir>/log.key`, created
//! with mode 0600 at first start. Its origin (the checkpoint's first line and the key name) is
//! derived from the public key, so two data directories never share a log name.

use std::io::Write as _;
use std::path::Path;

use serment_core::log::note::{KEY_TYPE_ED25519, NoteSigner};
use sha2::{Digest as _, Sha256};

use super::StoreError;

/// The key file's name inside the data directory.
pub(crate) const LOG_KEY_FILE: &str = "log.key";
/// The environment variable that may hold the key instead (64 hex digits, the Ed25519 seed):
/// for several instances sharing one database (issue 11 §4), from a secret store.
pub(crate) const LOG_KEY_ENV: &str = "SERMENT_LOG_KEY";

/// The log key: from [`LOG_KEY_ENV`] when it is set, else from `data_dir/log.key`, created
/// (0600) at first start. It is never written to the database.
///
/// # Errors
/// [`StoreError::Backend`] if the variable or the file does not hold 64 hex digits, or the file
/// cannot be read or created.
pub(crate) fn load(data_dir: &Path) -> Result<NoteSigner, StoreError> {
    match std::env::var(LOG_KEY_ENV) {
        Ok(text) => {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(text.trim(), &mut *seed).map_err(|_| {
                StoreError::Backend(format!("{LOG_KEY_ENV} does not hold 64 hex digits").into())
            })?;
            signer(&seed)
        }
        Err(_) => load_or_create(data_dir),
    }
}

/// The log signer of an Ed25519 seed, named by [`origin_for`].
///
/// # Errors
/// [`StoreError::Backend`] if the signer cannot be made.
pub(crate) fn signer(seed: &[u8; 32]) -> Result<NoteSigner, StoreError> {
    let pk = ed25519_dalek_public(seed);
    NoteSigner::new(&origin_for(&pk), KEY_TYPE_ED25519, seed)
        .map_err(|e| StoreError::Backend(e.to_string().into()))
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The origin of the log whose Ed25519 public key is `pk`: `serment.log/<16 hex of SHA-256(pk)>`.
pub(crate) fn origin_for(pk: &[u8; 32]) -> String {
    let d = Sha256::digest(pk);
    format!(
        "serment.log/{}",
        hex::encode(d.get(..8).unwrap_or_default())
    )
}

/// Loads the key, or creates it (0600) if the file does not exist.
pub(crate) fn load_or_create(data_dir: &Path) -> Result<NoteSigner, StoreError> {
    let path = data_dir.join(LOG_KEY_FILE);
    let seed: [u8; 32] = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed)
                .map_err(|_| StoreError::Backend("log.key does not hold 64 hex digits".into()))?;
            seed
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| StoreError::Backend(e.to_string().into()))?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(&path).map_err(backend)?;
            f.write_all(hex::encode(seed).as_bytes()).map_err(backend)?;
            f.sync_all().map_err(backend)?;
            seed
        }
        Err(e) => return Err(backend(e)),
    };
    signer(&seed)
}

fn ed25519_dalek_public(seed: &[u8; 32]) -> [u8; 32] {
    // The name is needed before the signer exists: derive the public key with a throwaway signer.
    NoteSigner::new("tmp", KEY_TYPE_ED25519, seed)
        .map(|s| s.verifier().public_key)
        .unwrap_or_default()
}
