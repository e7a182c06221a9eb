//! The agent process of `serment agent start` (PROTOCOL.md §13): holds the keystore's file key,
//! serves the socket, runs `put`/`get`/`seal`/`open` for the user's own processes, locks after
//! the TTL and zeroizes on stop. The client side and the frames are in [`super::agent`].

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serment_client::keystore::Keystore;
use serment_core::keystore::DerivedKey;
use zeroize::Zeroizing;

use super::Ctx;
use super::agent::{
    AGENT_PROTOCOL_VERSION, Answer, CLIENT_IO_TIMEOUT, Op, POLL, Request, Response, absolute,
    check_socket_dir, parse_ttl, peer_is_me, read_frame, socket_path, write_frame,
};
use crate::error::{CliError, CliResult};

/// The agent's state: the keystore it serves and, while unlocked, its file key.
struct Agent {
    keystore: PathBuf,
    /// The file key, dropped (and so zeroized: [`DerivedKey`] is `ZeroizeOnDrop`) on stop and
    /// after `ttl` without use. Only this `Arc` holds it between requests.
    key: Option<Arc<DerivedKey>>,
    ttl: Duration,
    last_used: Instant,
}

impl Agent {
    /// Drops the key once `ttl` has passed since the last use.
    fn expire(&mut self) {
        if self.key.is_some() && self.last_used.elapsed() >= self.ttl {
            self.key = None;
        }
    }

    fn status(&self) -> Answer {
        let left = self
            .key
            .as_ref()
            .map(|_| self.ttl.saturating_sub(self.last_used.elapsed()).as_secs());
        let locked = self.key.is_none();
        Answer::Ok {
            json: json!({ "locked": locked, "keystore": self.keystore.display().to_string(),
                          "pid": std::process::id(), "ttl_seconds": self.ttl.as_secs(),
                          "idle_expires_in_seconds": left }),
            text: if locked {
                format!(
                    "Agent (pid {}) for {}: locked (idle past its --ttl); `serment agent start` \
                     unlocks it again.",
                    std::process::id(),
                    self.keystore.display()
                )
            } else {
                format!(
                    "Agent (pid {}) for {}: unlocked, locks after {} s more idle.",
                    std::process::id(),
                    self.keystore.display(),
                    left.unwrap_or(0)
                )
            },
            notes: Vec::new(),
        }
    }

    /// Answers one request; the bool says whether to stop.
    fn handle(&mut self, req: Request) -> (Answer, bool) {
        if req.v != AGENT_PROTOCOL_VERSION {
            return (
                Answer::Error {
                    exit: 2,
                    code: "agent_version".into(),
                    message: format!(
                        "agent protocol version {} (the agent speaks {AGENT_PROTOCOL_VERSION})",
                        req.v
                    ),
                },
                false,
            );
        }
        self.expire();
        match req.op {
            Op::Status => return (self.status(), false),
            Op::Stop => {
                let a = self.status();
                self.key = None;
                return (a, true);
            }
            _ => {}
        }
        let Some(key) = self.key.clone() else {
            return (Answer::Locked, false);
        };
        if req.keystore.as_deref().map(canonical) != Some(canonical(&self.keystore)) {
            return (
                Answer::OtherKeystore {
                    keystore: self.keystore.clone(),
                },
                false,
            );
        }
        let answer = self.run_op(req, key);
        self.last_used = Instant::now();
        (answer, false)
    }

    /// Runs a command under the keystore lock, with the held key in place of the passphrase.
    fn run_op(&self, req: Request, key: Arc<DerivedKey>) -> Answer {
        let ctx = Ctx {
            json: true,
            home: self.keystore.parent().map(Path::to_path_buf),
            ca_cert: req.ca_cert,
            insecure_http: req.insecure_http,
            held_key: Some(key),
        };
        let (r, cap) = crate::output::capture(|| -> CliResult<()> {
            let _lock = super::lock_keystore_scoped(&self.keystore)?;
            match req.op {
                Op::Put {
                    file,
                    to,
                    title,
                    mime,
                    to_team,
                } => super::docs::put(&ctx, &file, &to, title, mime, to_team.as_deref()),
                Op::Get {
                    doc,
                    version,
                    output,
                    force,
                } => super::docs::get(&ctx, &doc, version, &output, force),
                Op::Seal {
                    input,
                    output,
                    force,
                    to_record,
                    title,
                    mime,
                } => super::offline::seal(
                    &ctx,
                    super::offline::SealArgs {
                        input: &input,
                        output: &output,
                        force,
                        to_records: &to_record,
                        title,
                        mime,
                    },
                ),
                Op::Open {
                    input,
                    output,
                    force,
                    author_record,
                } => super::offline::open(&ctx, &input, &output, force, author_record.as_deref()),
                Op::Status | Op::Stop => Ok(()),
            }
        });
        match r {
            Ok(()) => Answer::Ok {
                json: cap.json.unwrap_or(Value::Null),
                text: cap.text,
                notes: cap.notes,
            },
            Err(e) => {
                let mut message = e.to_string();
                for c in crate::distinct_causes(&e) {
                    message.push_str(": ");
                    message.push_str(&c);
                }
                Answer::Error {
                    exit: e.exit_code(),
                    code: e.code().into_owned(),
                    message,
                }
            }
        }
    }
}

/// `p` with symlinks resolved when it exists, else as given.
fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// `serment agent start --serve`: the agent itself. Reads the passphrase line from stdin, opens
/// the keystore, binds the socket, writes one JSON line to stdout (`{"ready":…}` or
/// `{"error":…}`), then serves until stopped.
pub(super) fn serve(ctx: &Ctx, ttl_arg: &str) -> CliResult<()> {
    let ready = (|| -> CliResult<(Agent, UnixListener, PathBuf)> {
        let ttl = parse_ttl(ttl_arg)?;
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| CliError::Passphrase(format!("cannot read it from the parent: {e}")))?;
        let pass = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
        drop(line);
        let keystore = absolute(&ctx.keystore_path()?)?;
        let key = {
            let _lock = super::lock_keystore_scoped(&keystore)?;
            let ks = Keystore::open(&keystore, pass)?;
            ks.file_key()
                .ok_or_else(|| CliError::Local("the keystore is not a file".into()))?
        };
        let sock =
            socket_path().ok_or_else(|| CliError::Input("SERMENT_AGENT_SOCK is empty".into()))?;
        let listener = bind(&sock)?;
        Ok((
            Agent {
                keystore,
                key: Some(key),
                ttl,
                last_used: Instant::now(),
            },
            listener,
            sock,
        ))
    })();
    let (mut agent, listener, sock) = match ready {
        Ok(r) => r,
        Err(e) => {
            crate::output::line(
                &json!({ "error": { "exit": e.exit_code(), "code": e.code(),
                                    "message": e.to_string() } })
                .to_string(),
            );
            return Ok(());
        }
    };
    crate::output::line(
        &json!({ "ready": { "pid": std::process::id(), "socket": sock.display().to_string() } })
            .to_string(),
    );
    let ino = sock.symlink_metadata().map(|m| (m.dev(), m.ino())).ok();
    loop {
        agent.expire();
        match listener.accept() {
            Ok((mut s, _)) => {
                if !peer_is_me(&s) {
                    continue;
                }
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(CLIENT_IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(CLIENT_IO_TIMEOUT));
                let Ok(req) = read_frame::<Request>(&mut s) else {
                    continue;
                };
                let (answer, stop) = agent.handle(req);
                let _ = write_frame(
                    &mut s,
                    &Response {
                        v: AGENT_PROTOCOL_VERSION,
                        answer,
                    },
                );
                if stop {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // The socket removed or replaced (another agent): this one is no longer
                // reachable, so it stops.
                if sock.symlink_metadata().map(|m| (m.dev(), m.ino())).ok() != ino {
                    agent.key = None;
                    return Ok(());
                }
                std::thread::sleep(POLL);
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
    agent.key = None;
    let _ = std::fs::remove_file(&sock);
    Ok(())
}

/// Binds the agent socket: checks its directory, replaces a stale socket (one nobody answers
/// on), refuses anything else in the way, and makes the socket 0600.
fn bind(sock: &Path) -> CliResult<UnixListener> {
    let dir = sock
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| CliError::Input(format!("agent socket {}: no directory", sock.display())))?;
    check_socket_dir(dir, true)?;
    if let Ok(m) = sock.symlink_metadata() {
        if !m.file_type().is_socket() {
            return Err(CliError::Local(format!(
                "{}: exists and is not a socket: refused",
                sock.display()
            )));
        }
        if UnixStream::connect(sock).is_ok() {
            return Err(CliError::Input(format!(
                "an agent already answers at {}",
                sock.display()
            )));
        }
        std::fs::remove_file(sock).map_err(|e| CliError::io(sock, e))?;
    }
    let listener = UnixListener::bind(sock).map_err(|e| CliError::io(sock, e))?;
    // The directory is 0700, so nobody else could reach the socket before this.
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::io(sock, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::io(sock, e))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    /// TTL: the key is dropped once idle past the TTL, and key operations then answer `locked`
    /// (status still answers). What this proves about zeroization: the only holder of the key is
    /// dropped, and the key type zeroizes on drop (`DerivedKey: ZeroizeOnDrop`, checked at
    /// compile time here; its bytes are a `Zeroizing` array).
    #[test]
    fn idle_past_the_ttl_drops_the_key_and_answers_locked() {
        let f =
            serment_core::keystore::seal(b"pass", b"x", serment_core::keystore::KdfParams::FLOOR)
                .unwrap();
        let (_, key) = serment_core::keystore::open_keyed(b"pass", &f).unwrap();
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        zeroizes_on_drop(&key);
        let key = Arc::new(key);
        let weak = Arc::downgrade(&key);
        let mut a = Agent {
            keystore: "/nonexistent/keystore.srmk".into(),
            key: Some(key),
            ttl: Duration::from_millis(30),
            last_used: Instant::now(),
        };
        std::thread::sleep(Duration::from_millis(60));
        let req = |op| Request {
            v: 1,
            keystore: Some("/nonexistent/keystore.srmk".into()),
            ca_cert: None,
            insecure_http: false,
            op,
        };
        let (ans, stop) = a.handle(req(Op::Open {
            input: "/i".into(),
            output: "/o".into(),
            force: false,
            author_record: None,
        }));
        assert!(matches!(ans, Answer::Locked), "{ans:?}");
        assert!(!stop);
        assert!(
            weak.upgrade().is_none(),
            "the key is dropped, not kept elsewhere"
        );
        let (ans, _) = a.handle(req(Op::Status));
        match ans {
            Answer::Ok { json, .. } => assert_eq!(json["locked"], true),
            other => panic!("{other:?}"),
        }
    }

    /// A keystore other than the agent's is not served (the client goes on without the agent),
    /// and stop drops the key.
    #[test]
    fn other_keystore_refused_and_stop_drops_the_key() {
        let f =
            serment_core::keystore::seal(b"pass", b"x", serment_core::keystore::KdfParams::FLOOR)
                .unwrap();
        let (_, key) = serment_core::keystore::open_keyed(b"pass", &f).unwrap();
        let key = Arc::new(key);
        let weak = Arc::downgrade(&key);
        let mut a = Agent {
            keystore: "/a/keystore.srmk".into(),
            key: Some(key),
            ttl: Duration::from_secs(600),
            last_used: Instant::now(),
        };
        let mut req = Request {
            v: 1,
            keystore: Some("/b/keystore.srmk".into()),
            ca_cert: None,
            insecure_http: false,
            op: Op::Open {
                input: "/i".into(),
                output: "/o".into(),
                force: false,
                author_record: None,
            },
        };
        assert!(matches!(a.handle(req).0, Answer::OtherKeystore { .. }));
        req = Request {
            v: 1,
            keystore: None,
            ca_cert: None,
            insecure_http: false,
            op: Op::Stop,
        };
        let (_, stop) = a.handle(req);
        assert!(stop);
        assert!(weak.upgrade().is_none());
    }
}
