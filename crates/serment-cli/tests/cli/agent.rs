//! `serment agent` (issue 14 §4, PROTOCOL.md §13) through the real binary: the socket's and its
//! directory's permissions (and a directory others can reach refused), `put`, `get`, `seal` and
//! `open` through the agent with no passphrase anywhere (no `SERMENT_PASSPHRASE`, no terminal),
//! refusal once the TTL has passed, and `stop` ending the process and its keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// Runs `serment --json ARGS` for `home` against the agent socket `sock`. With `pass`, the
/// passphrase is in the environment; without, the command has neither `SERMENT_PASSPHRASE` nor a
/// controlling terminal (`setsid`), so it cannot get a passphrase at all.
fn cmd(home: &Path, sock: &Path, pass: bool, args: &[&str]) -> Output {
    let mut c = Command::new("setsid");
    c.arg(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_AGENT_SOCK", sock)
        .env_remove("SERMENT_PASSPHRASE")
        .env_remove("SERMENT_SERVER")
        .stdin(Stdio::null());
    if pass {
        c.env("SERMENT_PASSPHRASE", PASS);
    }
    c.output().unwrap()
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn ok_no_pass(home: &Path, sock: &Path, args: &[&str]) -> serde_json::Value {
    let o = cmd(home, sock, false, args);
    assert!(
        o.status.success(),
        "{args:?} through the agent: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    json_of(&o)
}

/// A started agent, stopped (or killed) when dropped.
struct AgentProc {
    home: PathBuf,
    sock: PathBuf,
    pid: u32,
}

impl AgentProc {
    fn start(home: &Path, sock: &Path, ttl: &str) -> AgentProc {
        let o = cmd(home, sock, true, &["agent", "start", "--ttl", ttl]);
        assert!(
            o.status.success(),
            "agent start: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let v = json_of(&o);
        assert_eq!(v["socket"], sock.to_str().unwrap());
        AgentProc {
            home: home.to_path_buf(),
            sock: sock.to_path_buf(),
            pid: u32::try_from(v["pid"].as_u64().unwrap()).unwrap(),
        }
    }

    fn alive(&self) -> bool {
        // A zombie is not alive: the agent is not our child (it was reparented), so it is reaped
        // by init; `State: Z` is still checked to be exact.
        std::fs::read_to_string(format!("/proc/{}/status", self.pid)).is_ok_and(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
    }

    fn stop(&self) -> Output {
        cmd(&self.home, &self.sock, false, &["agent", "stop"])
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.stop();
            let _ = Command::new("kill").arg(self.pid.to_string()).status();
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn agent_socket_is_0600_in_a_0700_dir_and_a_reachable_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &home,
        &["id", "new", "--name", "agent-perm", "--kdf", "floor"],
    );
    let dir = tmp.path().join("run").join("serment");
    let sock = dir.join("agent.sock");
    {
        let agent = AgentProc::start(&home, &sock, "15m");
        assert_eq!(mode(&dir), 0o700, "socket directory");
        assert_eq!(mode(&sock), 0o600, "socket");
        let st = json_of(&cmd(&home, &sock, false, &["agent", "status"]));
        assert_eq!(st["running"], true);
        assert_eq!(st["locked"], false);
        // A second agent on the same socket is refused while the first is unlocked.
        let again = cmd(&home, &sock, true, &["agent", "start"]);
        assert_eq!(again.status.code(), Some(2), "{again:?}");
        assert!(agent.stop().status.success());
    }
    for bad in [0o777, 0o750, 0o701] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bad)).unwrap();
        let o = cmd(&home, &sock, true, &["agent", "start"]);
        assert_eq!(o.status.code(), Some(1), "mode {bad:o}: {o:?}");
        let e = json_of(&o);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lets other users in"),
            "{e}"
        );
        assert!(!sock.exists(), "no socket bound in a reachable directory");
    }
    // A symlink in place of the directory is refused too.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let o = cmd(&home, &link.join("agent.sock"), true, &["agent", "start"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}

/// `put` and `get` (with the server) and `seal` and `open` (offline) work through the agent for a
/// process that has no passphrase and no terminal; once the agent is stopped, its process is
/// gone, the socket is removed, and the same command fails for want of a passphrase (exit 3).
#[test]
fn cli_put_get_seal_open_through_the_agent_without_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProc::start(&root.join("data"), &[]);
    let lab = root.join("lab");
    let patient = root.join("patient");
    ok(
        &lab,
        &["id", "new", "--name", "agent-lab", "--kdf", "floor"],
    );
    ok(
        &patient,
        &["id", "new", "--name", "agent-pat", "--kdf", "floor"],
    );
    ok(&lab, &["register", "--server", &server.url]);
    ok(&patient, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "agent-pat"]);
    ok(&patient, &["contact", "add", "agent-lab"]);
    let sock = root.join("run").join("agent.sock");
    let agent = AgentProc::start(&lab, &sock, "15m");

    let report = root.join("report.txt");
    let data: Vec<u8> = (0..150_000u32).map(|i| (i * 31 + i / 97) as u8).collect();
    std::fs::write(&report, &data).unwrap();
    let put = ok_no_pass(
        &lab,
        &sock,
        &["put", report.to_str().unwrap(), "--to", "agent-pat"],
    );
    let doc = put["doc_id"].as_str().unwrap().to_owned();
    assert_eq!(put["plaintext_bytes"], 150_000);
    assert_eq!(
        put["schema"], 1,
        "the agent's answer is printed as a CLI JSON object"
    );

    // Relative output path: resolved in the caller's directory, not the agent's.
    let o = {
        let mut c = Command::new("setsid");
        c.arg(bin())
            .args(["--json", "get", &doc, "-o", "back.txt"])
            .current_dir(root)
            .env("SERMENT_HOME", &lab)
            .env("SERMENT_AGENT_SOCK", &sock)
            .env_remove("SERMENT_PASSPHRASE")
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    assert!(o.status.success(), "{o:?}");
    let got = json_of(&o);
    assert_eq!(got["verified"], true);
    assert_eq!(std::fs::read(root.join("back.txt")).unwrap(), data);

    // The recipient (no agent of its own: its keystore is not the agent's) gets it with its
    // passphrase, as before: the agent does not serve another keystore.
    let o = cmd(
        &patient,
        &sock,
        true,
        &["get", &doc, "-o", root.join("pat.txt").to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read(root.join("pat.txt")).unwrap(), data);

    // An error in the agent comes back with its own exit code and JSON error.
    let o = cmd(
        &lab,
        &sock,
        false,
        &["get", &doc, "-o", root.join("back.txt").to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "output exists (exit 1, as without the agent): {o:?}"
    );
    assert_eq!(json_of(&o)["error"]["code"], "output_exists");

    // Offline: seal and open.
    let sealed = root.join("report.srmc");
    let s = ok_no_pass(
        &lab,
        &sock,
        &[
            "seal",
            report.to_str().unwrap(),
            "-o",
            sealed.to_str().unwrap(),
        ],
    );
    assert_eq!(s["plaintext_bytes"], 150_000);
    let opened = root.join("opened.txt");
    let v = ok_no_pass(
        &lab,
        &sock,
        &[
            "open",
            sealed.to_str().unwrap(),
            "-o",
            opened.to_str().unwrap(),
        ],
    );
    assert_eq!(v["verified"], true);
    assert_eq!(std::fs::read(&opened).unwrap(), data);

    // Stop: the process exits and removes its socket; the keys went with it.
    let st = agent.stop();
    assert!(st.status.success(), "{st:?}");
    assert_eq!(json_of(&st)["stopped"], true);
    for _ in 0..100 {
        if !agent.alive() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!agent.alive(), "the agent process is gone after stop");
    assert!(!sock.exists());
    let o = cmd(
        &lab,
        &sock,
        false,
        &[
            "open",
            sealed.to_str().unwrap(),
            "-o",
            root.join("again.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "no agent, no passphrase: {o:?}");
    assert!(!root.join("again.txt").exists());
    let o = cmd(&lab, &sock, false, &["agent", "stop"]);
    assert_eq!(o.status.code(), Some(6), "no agent to stop: {o:?}");
}

/// After `--ttl` without use, the agent answers `locked`: a command falls back to asking for the
/// passphrase (and, with none to be had, fails with exit 3), and `agent status` says locked.
#[test]
fn agent_refuses_once_the_ttl_has_passed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &home,
        &["id", "new", "--name", "agent-ttl", "--kdf", "floor"],
    );
    let input = tmp.path().join("in.txt");
    std::fs::write(&input, b"ttl test").unwrap();
    let sock = tmp.path().join("run").join("agent.sock");
    let agent = AgentProc::start(&home, &sock, "2s");
    // Used within the TTL: works.
    let sealed = tmp.path().join("in.srmc");
    ok_no_pass(
        &home,
        &sock,
        &[
            "seal",
            input.to_str().unwrap(),
            "-o",
            sealed.to_str().unwrap(),
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let st = json_of(&cmd(&home, &sock, false, &["agent", "status"]));
    assert_eq!(st["running"], true);
    assert_eq!(st["locked"], true, "{st}");
    let out = tmp.path().join("out.txt");
    let o = cmd(
        &home,
        &sock,
        false,
        &[
            "open",
            sealed.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("locked"),
        "{o:?}"
    );
    assert!(!out.exists());
    // With the passphrase, the command runs itself.
    let o = cmd(
        &home,
        &sock,
        true,
        &[
            "open",
            sealed.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    // A locked agent is replaced by a new start.
    let again = AgentProc::start(&home, &sock, "15m");
    assert_ne!(again.pid, agent.pid);
    assert!(again.stop().status.success());
}

/// R4 (REVIEW2): the agent process dumps no core and is not dumpable, so neither a core file nor
/// `/proc/<pid>/mem` or a same-uid `ptrace` reads the key (or the passphrase) out of it. Seen from
/// outside: its `/proc/<pid>/limits` show a core file size of 0 (soft and hard), and, when the
/// test does not run as root, its `/proc/<pid>` files belong to root (the kernel's mark of a
/// non-dumpable process; as root that mark cannot be told apart, and the unit test
/// `cmd::agent_serve::tests::hardening_makes_the_process_not_dumpable` checks it in-process).
#[test]
fn agent_process_is_not_dumpable_and_dumps_no_core() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &home,
        &["id", "new", "--name", "agent-dump", "--kdf", "floor"],
    );
    let sock = tmp.path().join("run").join("agent.sock");
    let agent = AgentProc::start(&home, &sock, "15m");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", agent.pid)).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let v: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        &v[v.len() - 3..],
        &["0", "0", "bytes"],
        "RLIMIT_CORE 0: {core}"
    );
    // The key's pages are locked in RAM (no swap). Root has no RLIMIT_MEMLOCK; a user with
    // too low a limit gets a warning and `memory_locked: false` instead.
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid)).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    if rustix::process::geteuid().as_raw() == 0 {
        assert!(locked_kb > 0, "the agent locked no memory: {status}");
    }
    let st = ok_no_pass(&home, &sock, &["agent", "status"]);
    assert_eq!(st["memory_locked"], locked_kb > 0, "{st}");
    if rustix::process::geteuid().as_raw() != 0 {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/proc/{}/status", agent.pid)).unwrap();
        assert_eq!(
            m.uid(),
            0,
            "a non-dumpable process's /proc files are root's"
        );
    }
    assert!(agent.stop().status.success());
}

/// R5 (REVIEW2): the client runs the agent's own socket-directory check before it connects, and
/// refuses a socket path that is a symlink. An agent runs in a 0700 directory of the user; a
/// symlink to that directory (as another local user could plant in a shared `/tmp`), and a
/// symlink to the socket inside it, are not used: the command goes on without the agent (and so,
/// with no passphrase, fails with exit 3), and `agent status`/`stop` through them fail (exit 1).
#[test]
fn client_refuses_a_symlinked_socket_directory_or_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &home,
        &["id", "new", "--name", "agent-link", "--kdf", "floor"],
    );
    let input = tmp.path().join("in.txt");
    std::fs::write(&input, b"symlink test").unwrap();
    let dir = tmp.path().join("run");
    let sock = dir.join("agent.sock");
    let agent = AgentProc::start(&home, &sock, "15m");
    let dir_link = tmp.path().join("run-link");
    std::os::unix::fs::symlink(&dir, &dir_link).unwrap();
    let sock_link = dir.join("other.sock");
    std::os::unix::fs::symlink(&sock, &sock_link).unwrap();
    for via in [dir_link.join("agent.sock"), sock_link] {
        let sealed = tmp.path().join("in.srmc");
        let o = cmd(
            &home,
            &via,
            false,
            &[
                "seal",
                input.to_str().unwrap(),
                "-o",
                sealed.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(3), "{via:?} not used: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("symlink"),
            "{via:?}: the refusal is said: {o:?}"
        );
        assert!(!sealed.exists());
        for args in [&["agent", "status"][..], &["agent", "stop"][..]] {
            let o = cmd(&home, &via, false, args);
            assert_eq!(o.status.code(), Some(1), "{via:?} {args:?}: {o:?}");
        }
    }
    // The real path still works, and the agent was not stopped through a link.
    ok_no_pass(
        &home,
        &sock,
        &[
            "seal",
            input.to_str().unwrap(),
            "-o",
            tmp.path().join("ok.srmc").to_str().unwrap(),
        ],
    );
    assert!(agent.stop().status.success());
}
