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
    /// Whether [`lock_memory`] locked the pages holding the key in RAM.
    memory_locked: bool,
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
                          "idle_expires_in_seconds": left,
                          "memory_locked": self.memory_locked }),
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
        // Before the passphrase is read: no core file, no /proc/<pid>/mem, no same-uid ptrace.
        harden()?;
        let ttl = parse_ttl(ttl_arg)?;
        // Straight from fd 0, never through std's global `Stdin` (whose 8 KiB buffer would
        // keep a copy of the line for the agent's whole life).
        let pass = read_passphrase_line(std::io::stdin())?;
        let keystore = absolute(&ctx.keystore_path()?)?;
        let key = {
            let _lock = super::lock_keystore_scoped(&keystore)?;
            let ks = Keystore::open(&keystore, pass)?;
            ks.file_key()
                .ok_or_else(|| CliError::Local("the keystore is not a file".into()))?
        };
        // The key's page is resident now: locked in RAM with every page this process has
        // touched, so that neither it nor the keys a command unwraps reach swap.
        let memory_locked = lock_memory();
        let sock =
            socket_path().ok_or_else(|| CliError::Input("SERMENT_AGENT_SOCK is empty".into()))?;
        let listener = bind(&sock)?;
        Ok((
            Agent {
                keystore,
                key: Some(key),
                ttl,
                last_used: Instant::now(),
                memory_locked,
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

/// The longest passphrase line the agent reads from its parent, in bytes.
const MAX_PASSPHRASE_LINE: usize = 4096;

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core dump, and neither
/// `/proc/<pid>/mem` nor `ptrace` by the same uid without `CAP_SYS_PTRACE`) and sets
/// `RLIMIT_CORE` to 0 (soft and hard). Errors: the syscall's, as [`CliError::Local`].
fn harden() -> CliResult<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| CliError::Local(format!("agent: prctl(PR_SET_DUMPABLE, 0): {e}")))?;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| CliError::Local(format!("agent: setrlimit(RLIMIT_CORE, 0): {e}")))
}

/// Locks in RAM every page this process has touched so far, and those its current mappings
/// fault in later (`mlockall(MCL_CURRENT | MCL_ONFAULT)`): the file key, allocated before, never
/// reaches swap, nor do the keys a command decrypts on the pages already in use. New mappings
/// are not locked (`MCL_FUTURE` would make any allocation past `RLIMIT_MEMLOCK` fail). Returns
/// whether it worked; when the limit is too low (`ulimit -l`, 8 MiB for users on Debian), says
/// so on stderr and carries on: the agent is then what it was without the lock.
fn lock_memory() -> bool {
    use rustix::mm::{MlockAllFlags, mlockall};
    match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::ONFAULT) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "serment: agent: warning: its memory is not locked in RAM (mlockall: {e}; raise \
                 `ulimit -l`): its keys may be written to swap, use an encrypted swap."
            );
            false
        }
    }
}

/// Reads one passphrase line from `fd` unbuffered (one `read(2)` per byte, so nothing past the
/// newline is consumed or copied) into a fixed [`Zeroizing`] buffer; the line ends at `\n` or
/// end of file, and a `\r` before the `\n` is dropped. Errors ([`CliError::Passphrase`]): a
/// read error, a line over [`MAX_PASSPHRASE_LINE`] bytes, or one that is not UTF-8.
fn read_passphrase_line(fd: impl std::os::fd::AsFd) -> CliResult<Zeroizing<String>> {
    let mut buf = Zeroizing::new([0u8; MAX_PASSPHRASE_LINE]);
    let mut n = 0;
    loop {
        let Some(slot) = buf.get_mut(n..=n) else {
            return Err(CliError::Passphrase(format!(
                "the passphrase from the parent is over {MAX_PASSPHRASE_LINE} bytes"
            )));
        };
        match rustix::io::read(&fd, &mut *slot) {
            Ok(0) => break,
            Ok(_) if slot == b"\n" => break,
            Ok(_) => n += 1,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(CliError::Passphrase(format!(
                    "cannot read it from the parent: {e}"
                )));
            }
        }
    }
    let line = buf.get(..n).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line)
        .map_err(|_| CliError::Passphrase("the passphrase from the parent is not UTF-8".into()))?;
    let mut pass = Zeroizing::new(String::with_capacity(line.len()));
    pass.push_str(line);
    Ok(pass)
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
            memory_locked: false,
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

    /// R4: the hardening leaves the process non-dumpable, with no core file allowed (checked in
    /// this test process, which it hardens too).
    #[test]
    fn hardening_makes_the_process_not_dumpable() {
        use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};
        harden().unwrap();
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
    }

    /// R4: the passphrase line is read unbuffered: the bytes after its newline stay unread in
    /// the pipe (a buffered reader would have taken them), `\r\n` and end of file end a line,
    /// and an over-long line is refused.
    #[test]
    fn passphrase_line_is_read_unbuffered() {
        use std::io::{Read, Write};
        let (mut w, mut r) = UnixStream::pair().unwrap();
        w.write_all(b"correct horse\r\nREST").unwrap();
        assert_eq!(read_passphrase_line(&r).unwrap().as_str(), "correct horse");
        drop(w);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"REST", "nothing past the newline was consumed");

        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(b"no newline").unwrap();
        drop(w);
        assert_eq!(read_passphrase_line(&r).unwrap().as_str(), "no newline");

        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(&[b'a'; MAX_PASSPHRASE_LINE + 1]).unwrap();
        drop(w);
        assert!(read_passphrase_line(&r).is_err());
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
            memory_locked: false,
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
