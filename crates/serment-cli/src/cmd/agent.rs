//! `serment agent start|stop|status` (issue 14 §4, PROTOCOL.md §13): an unlock agent in the
//! manner of ssh-agent.
//!
//! `start` asks for the passphrase once, then runs the agent in the background: it derives the
//! keystore's file key (Argon2id, once), holds it, and serves a Unix socket that only the user can
//! reach (directory 0700 owned by the user, socket 0600, and each peer's uid checked with
//! `SO_PEERCRED`). `put`, `get`, `seal` and `open` then send the agent their arguments and it runs
//! the command itself: it reads the keystore with the held key under the keystore lock, and the
//! identity key, device keys and document keys stay in its process. It answers no raw signing or
//! unwrapping request: every signature it makes is one the command's protocol code builds with a
//! PROTOCOL §3 label. After `--ttl` of idleness it drops the key (zeroized) and answers `locked`;
//! `stop` drops it and exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serment_client::ClientError;
use zeroize::Zeroizing;

use super::Ctx;
use crate::cli::AgentCommand;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// The version of the agent protocol (PROTOCOL.md §13), carried as `v` in every frame.
pub(crate) const AGENT_PROTOCOL_VERSION: u16 = 1;
/// The largest frame read, in bytes (a request holds paths and options; a response, what a
/// command prints).
const MAX_FRAME: u32 = 1 << 20;
/// The shortest and longest `--ttl`.
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the agent waits for a client to send its request or take its answer.
pub(super) const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the idle agent looks at its clock and its socket.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// A command the agent runs for a client (PROTOCOL.md §13.2). Paths are absolute: the agent does
/// not share the client's working directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub(crate) enum Op {
    /// Whether the agent is locked, and for which keystore. Does not count as use.
    Status,
    /// Zeroize the key and exit.
    Stop,
    /// `serment put`.
    Put {
        file: PathBuf,
        to: Vec<String>,
        title: Option<String>,
        mime: Option<String>,
        to_team: Option<String>,
    },
    /// `serment get`.
    Get {
        doc: String,
        version: Option<u32>,
        output: PathBuf,
        force: bool,
    },
    /// `serment seal`.
    Seal {
        input: PathBuf,
        output: PathBuf,
        force: bool,
        to_record: Vec<PathBuf>,
        title: Option<String>,
        mime: Option<String>,
    },
    /// `serment open`.
    Open {
        input: PathBuf,
        output: PathBuf,
        force: bool,
        author_record: Option<PathBuf>,
    },
}

/// A request frame.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Request {
    pub(super) v: u16,
    /// The keystore the client would open (absolute).
    #[serde(default)]
    pub(super) keystore: Option<PathBuf>,
    /// The client's `--ca-cert` (absolute).
    #[serde(default)]
    pub(super) ca_cert: Option<PathBuf>,
    /// The client's `--insecure-http`.
    #[serde(default)]
    pub(super) insecure_http: bool,
    #[serde(flatten)]
    pub(super) op: Op,
}

/// A response frame's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub(super) enum Answer {
    /// Done: what the client prints.
    Ok {
        json: Value,
        text: String,
        #[serde(default)]
        notes: Vec<String>,
    },
    /// The key was dropped (TTL) or never held: the client asks for the passphrase itself.
    Locked,
    /// The agent holds another keystore: the client goes on without it.
    OtherKeystore { keystore: PathBuf },
    /// The command failed in the agent (exit code, error code and message, as the CLI shows).
    Error {
        exit: i32,
        code: String,
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Response {
    pub(super) v: u16,
    #[serde(flatten)]
    pub(super) answer: Answer,
}

/// `serment agent ...`.
pub(crate) fn run(ctx: &Ctx, c: AgentCommand) -> CliResult<()> {
    match c {
        AgentCommand::Start { ttl, serve: false } => start(ctx, &ttl),
        AgentCommand::Start { ttl, serve: true } => super::agent_serve::serve(ctx, &ttl),
        AgentCommand::Stop => stop(ctx),
        AgentCommand::Status => status(ctx),
    }
}

/// `p` made absolute against the working directory (without resolving symlinks; a trailing `/`
/// is kept, so the command's own checks still see it).
pub(crate) fn absolute(p: &Path) -> CliResult<PathBuf> {
    std::path::absolute(p).map_err(|e| CliError::io(p, e))
}

/// The socket: `SERMENT_AGENT_SOCK` (empty: no agent), else `$XDG_RUNTIME_DIR/serment/agent.sock`,
/// else `/tmp/serment-<uid>/agent.sock`.
pub(crate) fn socket_path() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("SERMENT_AGENT_SOCK") {
        return (!v.is_empty()).then(|| PathBuf::from(v));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("serment").join("agent.sock")),
        None => Some(PathBuf::from(format!(
            "/tmp/serment-{}/agent.sock",
            rustix::process::getuid().as_raw()
        ))),
    }
}

fn my_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Checks the socket's directory: a real directory (not a symlink), owned by this user, with no
/// access for group or others. With `create`, a missing one is created 0700.
pub(crate) fn check_socket_dir(dir: &Path, create: bool) -> CliResult<()> {
    let meta = match dir.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CliError::io(dir, e))?;
            dir.symlink_metadata().map_err(|e| CliError::io(dir, e))?
        }
        Err(e) => return Err(CliError::io(dir, e)),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        return Err(CliError::Local(format!(
            "agent socket directory {}: not a directory (a symlink is refused too)",
            dir.display()
        )));
    }
    if meta.uid() != my_uid() {
        return Err(CliError::Local(format!(
            "agent socket directory {}: owned by uid {}, not by you (uid {}): refused (another \
             user made it first? set XDG_RUNTIME_DIR or SERMENT_AGENT_SOCK to a directory of yours)",
            dir.display(),
            meta.uid(),
            my_uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::Local(format!(
            "agent socket directory {}: mode {mode:04o} lets other users in; only you may reach \
             the agent: `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Whether the process at the other end of `s` runs as this user (`SO_PEERCRED`).
pub(super) fn peer_is_me(s: &UnixStream) -> bool {
    peer_is(s, my_uid())
}

/// Whether the process at the other end of `s` runs as `uid` (`SO_PEERCRED`); `false` when the
/// kernel does not say.
fn peer_is(s: &UnixStream, uid: u32) -> bool {
    rustix::net::sockopt::socket_peercred(s).is_ok_and(|c| c.uid.as_raw() == uid)
}

/// The client's checks before it connects to `sock` (REVIEW2 R5): `Ok(false)` when nothing is
/// there; else its directory passes [`check_socket_dir`] (the agent's own check) and `sock`
/// itself is a socket, not a symlink. Errors: [`CliError::Local`] naming what was refused.
fn client_checks(sock: &Path) -> CliResult<bool> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match sock.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(CliError::io(sock, e)),
        Ok(m) => m,
    };
    let dir = sock
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| CliError::Input(format!("agent socket {}: no directory", sock.display())))?;
    check_socket_dir(dir, false)?;
    if !meta.file_type().is_socket() {
        return Err(CliError::Local(format!(
            "agent socket {}: not a socket (a symlink is refused too)",
            sock.display()
        )));
    }
    Ok(true)
}

pub(super) fn write_frame(s: &mut UnixStream, value: &impl Serialize) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("agent frame over 1 MiB"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    s.write_all(&frame)?;
    s.flush()
}

pub(super) fn read_frame<T: serde::de::DeserializeOwned>(s: &mut UnixStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other("agent frame over 1 MiB"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Sends `op` to the agent at `sock` and returns its answer; `None` when no agent answers there
/// (no socket, a stale one, or one served by another user, which is never used).
fn ask(ctx: &Ctx, sock: &Path, op: Op) -> CliResult<Option<Answer>> {
    if !client_checks(sock)? {
        return Ok(None);
    }
    let Ok(mut s) = UnixStream::connect(sock) else {
        return Ok(None);
    };
    if !peer_is_me(&s) {
        crate::output::note(&format!(
            "serment: warning: the agent socket {} is served by another user: ignored",
            sock.display()
        ));
        return Ok(None);
    }
    let keystore = ctx.keystore_path().ok().map(|p| absolute(&p)).transpose()?;
    let req = Request {
        v: AGENT_PROTOCOL_VERSION,
        keystore,
        ca_cert: ctx
            .ca_cert
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .map(absolute)
            .transpose()?,
        insecure_http: ctx.insecure_http,
        op,
    };
    let io = |e: std::io::Error| CliError::Local(format!("agent {}: {e}", sock.display()));
    write_frame(&mut s, &req).map_err(io)?;
    let resp: Response = read_frame(&mut s).map_err(io)?;
    if resp.v != AGENT_PROTOCOL_VERSION {
        return Err(CliError::Local(format!(
            "agent {}: protocol version {} (this serment speaks {AGENT_PROTOCOL_VERSION}): \
             restart it with `serment agent stop` and `serment agent start`",
            sock.display(),
            resp.v
        )));
    }
    Ok(Some(resp.answer))
}

/// Runs `op` in the agent when one answers for this keystore. Returns `Ok(true)` when it ran
/// there (its output printed here), `Ok(false)` when the caller must run it itself (no agent, a
/// locked one, one for another keystore), and the command's own error when it failed there.
pub(crate) fn try_run(ctx: &Ctx, op: Op) -> CliResult<bool> {
    let Some(sock) = socket_path() else {
        return Ok(false);
    };
    if sock.symlink_metadata().is_err() {
        return Ok(false);
    }
    let answer = match ask(ctx, &sock, op) {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(false),
        Err(e) => {
            crate::output::note(&format!(
                "serment: warning: {e}; going on without the agent"
            ));
            return Ok(false);
        }
    };
    match answer {
        Answer::Ok { json, text, notes } => {
            for n in notes {
                crate::output::note(&n);
            }
            emit(ctx.json, &json, &text);
            Ok(true)
        }
        Answer::Locked => {
            crate::output::note(&format!(
                "serment: the agent at {} is locked (idle past its --ttl): asking for the \
                 passphrase; `serment agent start` unlocks it again",
                sock.display()
            ));
            Ok(false)
        }
        Answer::OtherKeystore { .. } => Ok(false),
        Answer::Error {
            exit,
            code,
            message,
        } => Err(CliError::Agent {
            exit,
            code,
            message,
        }),
    }
}

pub(super) fn parse_ttl(s: &str) -> CliResult<Duration> {
    let d = humantime::parse_duration(s).map_err(|e| {
        CliError::Input(format!(
            "--ttl {s:?}: {e} (give a duration such as 90s, 15m or 1h)"
        ))
    })?;
    if !(MIN_TTL..=MAX_TTL).contains(&d) {
        return Err(CliError::Input(format!(
            "--ttl {s:?}: between 1s and 7 days"
        )));
    }
    Ok(d)
}

/// `serment agent start`: checks, asks for the passphrase, then runs `agent start --serve` in
/// the background and relays its first line (ready, or the error that stopped it).
fn start(ctx: &Ctx, ttl_arg: &str) -> CliResult<()> {
    let ttl = parse_ttl(ttl_arg)?;
    let sock = socket_path().ok_or_else(|| {
        CliError::Input("SERMENT_AGENT_SOCK is empty: set it to a socket path, or unset it".into())
    })?;
    let dir = sock
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| CliError::Input(format!("agent socket {}: no directory", sock.display())))?;
    check_socket_dir(dir, true)?;
    let keystore = absolute(&ctx.keystore_path()?)?;
    if !keystore.exists() {
        return Err(ClientError::NoKeystore(keystore.display().to_string()).into());
    }
    match ask(ctx, &sock, Op::Status)? {
        Some(Answer::Ok { json, .. }) if json.get("locked") == Some(&Value::Bool(false)) => {
            return Err(CliError::Input(format!(
                "an agent already answers at {} (keystore {}): `serment agent stop` first",
                sock.display(),
                json.get("keystore").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        // A locked agent is replaced.
        Some(_) => {
            ask(ctx, &sock, Op::Stop)?;
            wait_gone(&sock);
        }
        None => {}
    }
    let pass = super::passphrase(false)?;
    let home = keystore
        .parent()
        .ok_or_else(|| CliError::Input(format!("keystore {}: no directory", keystore.display())))?;
    let exe =
        std::env::current_exe().map_err(|e| CliError::Local(format!("serment binary: {e}")))?;
    let mut child = std::process::Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(["agent", "start", "--serve", "--ttl", ttl_arg])
        .env("SERMENT_AGENT_SOCK", &sock)
        .env_remove("SERMENT_PASSPHRASE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // Its own process group: a Ctrl-C or hang-up of this terminal does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Local(format!("cannot start the agent: {e}")))?;
    {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| CliError::Local("the agent's stdin is not a pipe".into()))?;
        let mut line = Zeroizing::new(pass.as_bytes().to_vec());
        line.push(b'\n');
        stdin
            .write_all(&line)
            .map_err(|e| CliError::Local(format!("cannot hand the agent the passphrase: {e}")))?;
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| CliError::Local("the agent's stdout is not a pipe".into()))?;
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| CliError::Local(format!("the agent did not answer: {e}")))?;
    let v: Value = serde_json::from_str(first.trim()).unwrap_or(Value::Null);
    if let Some(err) = v.get("error") {
        let _ = child.wait();
        return Err(CliError::Agent {
            exit: err["exit"]
                .as_i64()
                .and_then(|e| i32::try_from(e).ok())
                .unwrap_or(1),
            code: err["code"].as_str().unwrap_or("agent").to_owned(),
            message: err["message"]
                .as_str()
                .unwrap_or("the agent failed")
                .to_owned(),
        });
    }
    if v.get("ready").is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CliError::Local(
            "the agent exited before it was ready".into(),
        ));
    }
    // The agent runs on after this process exits (it is reparented); not waited for.
    let pid = child.id();
    drop(child);
    emit(
        ctx.json,
        &json!({ "socket": sock.display().to_string(), "pid": pid, "ttl_seconds": ttl.as_secs(),
                 "keystore": keystore.display().to_string() }),
        &format!(
            "Agent started (pid {pid}): {} unlocked until {} idle.\n  socket: {}\n  `serment agent \
             stop` zeroizes the keys; until then anything running as you can use them (not read \
             them).",
            keystore.display(),
            humantime::format_duration(ttl),
            sock.display()
        ),
    );
    Ok(())
}

/// Waits (up to 5 s) for the socket file to disappear after a stop.
fn wait_gone(sock: &Path) {
    let t = Instant::now();
    while sock.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(POLL);
    }
}

fn stop(ctx: &Ctx) -> CliResult<()> {
    let sock = socket_path()
        .ok_or_else(|| CliError::Input("SERMENT_AGENT_SOCK is empty: no agent to stop".into()))?;
    match ask(ctx, &sock, Op::Stop)? {
        Some(Answer::Ok { json, .. }) => {
            wait_gone(&sock);
            emit(
                ctx.json,
                &json!({ "stopped": true, "socket": sock.display().to_string(), "pid": json.get("pid") }),
                &format!(
                    "Agent at {} stopped: its keys are zeroized.",
                    sock.display()
                ),
            );
            Ok(())
        }
        _ => Err(CliError::Agent {
            exit: 6,
            code: "no_agent".into(),
            message: format!("no agent answers at {}", sock.display()),
        }),
    }
}

fn status(ctx: &Ctx) -> CliResult<()> {
    let sock = socket_path();
    let answer = match &sock {
        Some(s) => ask(ctx, s, Op::Status)?,
        None => None,
    };
    let shown = sock.as_ref().map_or_else(
        || "(none: SERMENT_AGENT_SOCK is empty)".to_owned(),
        |s| s.display().to_string(),
    );
    match answer {
        Some(Answer::Ok { mut json, text, .. }) => {
            if let Some(m) = json.as_object_mut() {
                m.insert("running".into(), Value::Bool(true));
                m.insert("socket".into(), Value::String(shown));
            }
            emit(ctx.json, &json, &text);
        }
        _ => emit(
            ctx.json,
            &json!({ "running": false, "locked": true, "socket": shown, "keystore": null,
                     "pid": null, "ttl_seconds": null, "idle_expires_in_seconds": null,
                     "memory_locked": null }),
            &format!("No agent answers at {shown}."),
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    /// The request and response frames keep the shapes PROTOCOL.md §13 specifies.
    #[test]
    fn frames_have_the_documented_shape() {
        let req = Request {
            v: 1,
            keystore: Some("/h/keystore.srmk".into()),
            ca_cert: None,
            insecure_http: false,
            op: Op::Get {
                doc: "ab".into(),
                version: None,
                output: "/o".into(),
                force: false,
            },
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({ "v": 1, "keystore": "/h/keystore.srmk", "ca_cert": null,
                    "insecure_http": false, "op": "get", "doc": "ab", "version": null,
                    "output": "/o", "force": false })
        );
        let r = Response {
            v: 1,
            answer: Answer::Locked,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({ "v": 1, "status": "locked" })
        );
    }

    /// R5: the peer-uid check answers for the uid at the other end only (a socketpair: this
    /// process at both ends).
    #[test]
    fn peer_uid_check_refuses_another_uid() {
        let (a, b) = UnixStream::pair().unwrap();
        assert!(peer_is(&a, my_uid()) && peer_is_me(&b));
        assert!(!peer_is(&a, my_uid().wrapping_add(1)));
        assert!(!peer_is(&b, 0xffff_fffe));
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("30d").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
