//! A witness (PROTOCOL.md §11.8): polls a log's checkpoints, verifies each is consistent with the
//! last one it cosigned, and posts a C2SP `cosignature/v1`. Run by someone other than the hosting
//! provider (a hospital's data protection officer, a second host): a log that shows two clients
//! different trees cannot get both cosigned.
//!
//! State in the witness's data directory: `witness.key` (Ed25519 seed, hex, mode 0600) and
//! `witness.json` (the log key pinned on first contact and the last checkpoint cosigned).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serment_core::log::note::{
    Checkpoint, KEY_TYPE_COSIGNATURE_V1, NoteSignature, NoteSigner, SignedCheckpoint, VerifierKey,
};
use serment_core::log::pin::check_advance;

use crate::api::Api;
use crate::error::{ClientError, Result};

/// What a witness remembers about the log it watches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WitnessState {
    /// The log's verifier key, pinned on first contact.
    pub log_vkey: Option<String>,
    /// The last checkpoint cosigned (note text).
    pub checkpoint: Option<String>,
    /// How many checkpoints this witness has cosigned.
    #[serde(default)]
    pub cosigned: u64,
    /// The loss statements this witness accepted (ids, PROTOCOL.md §11.11): never twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_losses: Vec<String>,
    /// When this witness last cosigned (its own clock, seconds since the Unix epoch): a loss
    /// statement written well before it cannot explain losing what it cosigned after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosigned_at: Option<u64>,
    /// This witness's own cosignature line of [`WitnessState::checkpoint`], as posted to the
    /// log (C2SP `cosignature/v1`); `None` in states written before it was kept, and after
    /// [`Witness::accept_rollback`] until the next cosignature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosignature: Option<String>,
}

/// The newest checkpoint a witness cosigned, as [`export_checkpoint`] gives it.
#[derive(Debug, Clone)]
pub struct ExportedCheckpoint {
    /// The log-signed note with this witness's own cosignature line added.
    pub note: String,
    /// Its tree size.
    pub size: u64,
    /// The log's verifier key the witness pinned.
    pub log_vkey: Option<String>,
    /// The witness's verifier key (type 0x04), whose line the note carries.
    pub witness_vkey: String,
}

/// The newest checkpoint the witness in `dir` cosigned, from its data directory alone (no
/// server; nothing is created or changed in `dir`), with the witness's own cosignature line
/// (PROTOCOL.md §11.8): the one it posted, or, for a state that did not keep it (written
/// before it was kept, or just moved back by [`Witness::accept_rollback`]), one made now
/// with its key (`witness.key`) and `name`, exactly as [`Witness::step`] makes it. The line
/// is checked against the key before the note is given.
///
/// # Errors
/// [`ClientError::Input`] for a directory without a witness state, a state that cosigned
/// nothing, or a key file that is not the witness's; [`ClientError::Log`] for a malformed note
/// or line; [`ClientError::Io`].
pub fn export_checkpoint(dir: &Path, name: &str) -> Result<ExportedCheckpoint> {
    let sp = dir.join("witness.json");
    let state: WitnessState = match std::fs::read(&sp) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| ClientError::Input(format!("{}: {e}", sp.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClientError::Input(format!(
                "{} holds no witness state (witness.json): this is not a witness's data \
                 directory, or it never cosigned",
                dir.display()
            )));
        }
        Err(e) => return Err(ClientError::io(&sp, e)),
    };
    let note = state.checkpoint.as_deref().ok_or_else(|| {
        ClientError::Input(format!(
            "the witness in {} has cosigned no checkpoint yet",
            dir.display()
        ))
    })?;
    let mut signed = SignedCheckpoint::parse(note).map_err(ClientError::Log)?;
    let kp = dir.join("witness.key");
    let seed = match std::fs::read_to_string(&kp) {
        Ok(t) => {
            let mut s = zeroize::Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(t.trim(), &mut s[..])
                .map_err(|_| ClientError::Input("witness.key: expected 64 hex digits".into()))?;
            s
        }
        Err(e) => return Err(ClientError::io(&kp, e)),
    };
    let stored = state
        .cosignature
        .as_deref()
        .map(NoteSignature::parse_line)
        .transpose()
        .map_err(ClientError::Log)?;
    let name = stored.as_ref().map_or(name, |l| l.name.as_str()).to_owned();
    let signer = NoteSigner::new(&name, KEY_TYPE_COSIGNATURE_V1, &seed)
        .map_err(|e| ClientError::Input(format!("witness name: {e}")))?;
    let line = match stored {
        Some(l) => l,
        None => signer
            .cosign(&signed.checkpoint, crate::now_secs())
            .map_err(ClientError::Log)?,
    };
    let witness = signer.verifier();
    signed.verify_cosignature(&line, &witness).map_err(|_| {
        ClientError::Input(format!(
            "the cosignature kept in {} is not this witness's key's (witness.key changed?)",
            sp.display()
        ))
    })?;
    // The note as served may carry this witness's line already (the log adds posted
    // cosignatures): it is then kept once.
    signed.push_cosignature(line);
    Ok(ExportedCheckpoint {
        note: signed.encode().map_err(ClientError::Log)?,
        size: signed.checkpoint.size,
        log_vkey: state.log_vkey,
        witness_vkey: witness.encode(),
    })
}

/// A witness with its key and state.
#[derive(Debug)]
pub struct Witness {
    dir: PathBuf,
    signer: NoteSigner,
    /// The state.
    pub state: WitnessState,
}

impl Witness {
    /// Opens (creating if needed) the witness in `dir`, named `name`.
    ///
    /// # Errors
    /// [`ClientError::Io`], [`ClientError::Input`] for a bad name or key file.
    pub fn open(dir: &Path, name: &str) -> Result<Witness> {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
        let key_path = dir.join("witness.key");
        let seed: [u8; 32] = match std::fs::read_to_string(&key_path) {
            Ok(t) => {
                let mut s = [0u8; 32];
                hex::decode_to_slice(t.trim(), &mut s).map_err(|_| {
                    ClientError::Input("witness.key: expected 64 hex digits".into())
                })?;
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut s = [0u8; 32];
                serment_core::rng::fill(&mut s).map_err(ClientError::Integrity)?;
                let mut o = std::fs::OpenOptions::new();
                o.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    o.mode(0o600);
                }
                let mut f = o
                    .open(&key_path)
                    .map_err(|e| ClientError::io(&key_path, e))?;
                f.write_all(hex::encode(s).as_bytes())
                    .map_err(|e| ClientError::io(&key_path, e))?;
                s
            }
            Err(e) => return Err(ClientError::io(&key_path, e)),
        };
        let signer = NoteSigner::new(name, KEY_TYPE_COSIGNATURE_V1, &seed)
            .map_err(|e| ClientError::Input(format!("witness name: {e}")))?;
        let sp = dir.join("witness.json");
        let state = match std::fs::read(&sp) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ClientError::Input(format!("witness.json: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => WitnessState::default(),
            Err(e) => return Err(ClientError::io(&sp, e)),
        };
        Ok(Witness {
            dir: dir.to_owned(),
            signer,
            state,
        })
    }

    /// The witness's verifier key (type 0x04), for clients' configuration.
    pub fn vkey(&self) -> String {
        self.signer.verifier().encode()
    }

    fn save(&self) -> Result<()> {
        let p = self.dir.join("witness.json");
        let b = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        crate::fsutil::write_atomic(&p, &b)
    }

    /// Accepts a restore's loss (PROTOCOL.md §11.11): with `announced` the statement id the
    /// log's operator announced (at least 16 hex digits of it), the server's newest loss
    /// statement that verifies with the pinned log key, covers the last checkpoint cosigned, was
    /// written after it (within the clock margin), was not accepted before, is the announced one,
    /// and whose restored tree head the served log extends, moves this witness back to the
    /// restored checkpoint (the log-signed note of that size, which must be the statement's tree
    /// head). The next [`Witness::step`] cosigns from there. Returns the statement's id.
    ///
    /// # Errors
    /// [`ClientError::Input`] when nothing was cosigned or the served log extends the last
    /// checkpoint cosigned (nothing to accept); [`ClientError::Log`] for a statement that does
    /// not apply, a size other than the statement's, a note that does not verify.
    pub fn accept_rollback(&mut self, api: &Api, announced: &str) -> Result<String> {
        let (Some(vkey), Some(last)) = (&self.state.log_vkey, &self.state.checkpoint) else {
            return Err(ClientError::Input(
                "this witness has cosigned nothing: there is no rollback to accept".into(),
            ));
        };
        let log_key = VerifierKey::parse(vkey).map_err(ClientError::Log)?;
        let last = SignedCheckpoint::parse(last)
            .map_err(ClientError::Log)?
            .checkpoint;
        let served =
            SignedCheckpoint::parse(&api.log_checkpoint(None)?).map_err(ClientError::Log)?;
        served
            .verify_log_signature(&log_key)
            .map_err(ClientError::Log)?;
        let served = served.checkpoint;
        if crate::rollback::extends(api, &last, &served) {
            return Err(ClientError::Input(format!(
                "nothing to accept: the log ({} entries) extends the last checkpoint cosigned \
                 ({} entries)",
                served.size, last.size
            )));
        }
        let accepted: Vec<&str> = self
            .state
            .accepted_losses
            .iter()
            .map(String::as_str)
            .collect();
        let statement = crate::rollback::covering_statement(
            api,
            &log_key,
            &last,
            &served,
            &accepted,
            self.state.cosigned_at,
        )?;
        crate::rollback::check_announced(&statement, announced)?;
        let restored = &statement.statement.restored;
        let note = api.log_checkpoint(Some(restored.size))?;
        let signed = SignedCheckpoint::parse(&note).map_err(ClientError::Log)?;
        signed
            .verify_log_signature(&log_key)
            .map_err(ClientError::Log)?;
        if &signed.checkpoint != restored {
            return Err(ClientError::Log(serment_core::Error::LossStatement {
                reason: "the served checkpoint of the restored size is not the statement's",
            }));
        }
        self.state.checkpoint = Some(note);
        self.state.cosignature = None;
        self.state.accepted_losses.push(statement.id());
        self.save()?;
        Ok(statement.id())
    }

    /// One round: fetch the latest checkpoint, verify the log's signature (log key pinned on first
    /// contact), refuse a rollback or a fork against the last cosigned checkpoint (consistency
    /// proof), cosign and post. Returns the size cosigned, or `None` if nothing new.
    ///
    /// # Errors
    /// [`ClientError::Log`] (rollback, fork, bad signature): the witness stops cosigning.
    pub fn step(&mut self, api: &Api) -> Result<Option<u64>> {
        let served_key = api.log_key()?;
        let vkey = self.state.log_vkey.get_or_insert(served_key).clone();
        let log_key = VerifierKey::parse(&vkey).map_err(ClientError::Log)?;
        let note = api.log_checkpoint(None)?;
        let signed = SignedCheckpoint::parse(&note).map_err(ClientError::Log)?;
        signed
            .verify_log_signature(&log_key)
            .map_err(ClientError::Log)?;
        let new = signed.checkpoint;
        let old: Option<Checkpoint> = match &self.state.checkpoint {
            Some(n) => Some(
                SignedCheckpoint::parse(n)
                    .map_err(ClientError::Log)?
                    .checkpoint,
            ),
            None => None,
        };
        if old.as_ref().is_some_and(|o| o == &new) {
            return Ok(None);
        }
        let proof = match &old {
            Some(o) if o.size > 0 && new.size > o.size => api.log_consistency(o.size, new.size)?,
            _ => Vec::new(),
        };
        check_advance(old.as_ref(), &new, &proof).map_err(ClientError::Log)?;
        let sig = self
            .signer
            .cosign(&new, crate::now_secs())
            .map_err(ClientError::Log)?;
        api.post_cosignature(&self.vkey(), new.size, &sig.line())?;
        self.state.checkpoint = Some(note);
        self.state.cosignature = Some(sig.line());
        self.state.cosigned += 1;
        self.state.cosigned_at = Some(crate::now_secs());
        self.save()?;
        Ok(Some(new.size))
    }
}
