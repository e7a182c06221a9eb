//! The README's CLI walkthrough, run as written (issue 18): the commands of the first `sh` block
//! under "## CLI walkthrough" are extracted from README.md and run in order through the real
//! binary, in a temporary home and working directory, against the server the walkthrough itself
//! starts. When the README changes, this test follows it.
//!
//! What is filled in, and nothing else:
//! - `~` is the temporary home; the working directory holds `examples/` (a copy of the
//!   repository's) and `compte-rendu.pdf` (any file), as if run from the repository root; the
//!   TLS files the walkthrough names (`ca.pem`, `server.pem`, `server.key`) are the ones its own
//!   `serment tls test-pki` step writes, so that every command runs against
//!   `serve --tls-cert/--tls-key` with a private CA (issue 10 §1), as a newcomer's trial does;
//! - the server the walkthrough starts with `serment serve ... &` listens on a free loopback port
//!   (`--listen 127.0.0.1:0` is appended), and its URL replaces the README's;
//! - `$PWD` is that working directory (the server's trial mail directory, `file://$PWD/mail`);
//! - `<DOC_ID>` is the document the walkthrough's first `put` uploaded; `<CLAIM_CODE>` the claim
//!   code its `put --to-unregistered` printed (issue 17 §1); `<OTP>` the one-time code in the
//!   newest mail the server wrote; `<RECOVERY_CODE>` the code `id recovery-code` showed on stderr
//!   (issue 17 §2);
//! - every `serment` command gets the global `--json`, so that its answer can be checked.
//!
//! Each step must exit with the code the README expects (0, unless the line carries a
//! `# exit N` comment), and the walkthrough must end with an `audit` that exits 0 for the lab,
//! the patient and the GP: no false alarm after the README's own steps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{PASS, bin, copy_dir};

/// One command line of the walkthrough.
#[derive(Debug, Clone)]
struct Step {
    /// `VAR=value` assignments before the command.
    env: Vec<(String, String)>,
    /// The words of the command, `serment` first (or `export`).
    words: Vec<String>,
    /// Run in the background (`&`).
    background: bool,
    /// The exit code the README expects (`# exit N`), 0 by default.
    expect: i32,
    /// The line as written, for messages.
    line: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first ```sh block after the `## CLI walkthrough` heading.
fn walkthrough_block(readme: &str) -> Vec<String> {
    let start = readme
        .find("## CLI walkthrough")
        .expect("README.md has no '## CLI walkthrough' section");
    let rest = &readme[start..];
    let open = rest
        .find("```sh\n")
        .expect("no ```sh block in the walkthrough")
        + 6;
    let close = rest[open..].find("```").expect("unterminated ```sh block") + open;
    rest[open..close].lines().map(str::to_owned).collect()
}

/// Splits a shell line into words (double and single quotes, no other expansion), dropping a
/// trailing `# comment`; returns the words and the comment.
fn shell_words(line: &str) -> (Vec<String>, String) {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    let mut comment = String::new();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => {
                comment = chars.collect();
                break;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in README line {line:?}");
    if in_word {
        words.push(cur);
    }
    (words, comment.trim().to_owned())
}

fn parse_steps(block: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending = String::new();
    for raw in block {
        let l = raw.trim_end();
        if let Some(cont) = l.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(l);
        let line = std::mem::take(&mut pending);
        let (mut words, comment) = shell_words(&line);
        if words.is_empty() {
            continue;
        }
        let background = words.last().is_some_and(|w| w == "&");
        if background {
            words.pop();
        }
        let mut env = Vec::new();
        while words.first().is_some_and(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        }) {
            let w = words.remove(0);
            let (k, v) = w.split_once('=').unwrap();
            env.push((k.to_owned(), v.to_owned()));
        }
        let expect = comment
            .strip_prefix("exit ")
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            matches!(
                words.first().map(String::as_str),
                Some("serment" | "export")
            ),
            "the walkthrough runs only `serment` and `export`: {line:?}"
        );
        steps.push(Step {
            env,
            words,
            background,
            expect,
            line: line.trim().to_owned(),
        });
    }
    steps
}

/// A background server started by the walkthrough, killed at the end.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The one-time code of the newest mail the trial server wrote into `dir` (`file://DIR`).
fn newest_otp(dir: &Path) -> String {
    let newest = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the server wrote no mail into {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("the server wrote no mail");
    let text = std::fs::read_to_string(&newest).unwrap();
    let at = text
        .find("one-time code is: ")
        .unwrap_or_else(|| panic!("no one-time code in the mail {text}"));
    let code: String = text[at + 18..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 8, "an 8-digit one-time code: {text}");
    code
}

/// Fills the placeholders of one word.
fn fill(word: &str, home: &Path, cwd: &Path, vars: &BTreeMap<String, String>) -> String {
    let mut w = word.to_owned();
    if let Some(rest) = w.strip_prefix("~/") {
        w = home.join(rest).display().to_string();
    }
    w = w.replace("$PWD", &cwd.display().to_string());
    for (k, v) in vars {
        w = w.replace(k, v);
    }
    w
}

#[test]
fn readme_walkthrough_runs_as_written_and_ends_with_a_clean_audit() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let steps = parse_steps(&walkthrough_block(&readme));
    assert!(
        steps.len() >= 10,
        "the walkthrough is suspiciously short: {steps:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cwd = tmp.path().join("repo");
    std::fs::create_dir_all(&home).unwrap();
    copy_dir(&repo_root().join("examples"), &cwd.join("examples"));
    std::fs::write(
        cwd.join("compte-rendu.pdf"),
        b"%PDF-1.4\n% a report\n%%EOF\n",
    )
    .unwrap();

    // Placeholder -> value; the server URL and <DOC_ID> are learnt on the way.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut exported: BTreeMap<String, String> = BTreeMap::new();
    let mut servers = Vec::new();
    // (SERMENT_HOME, command) of every audit run, with its exit code.
    let mut audits: Vec<(String, i32)> = Vec::new();
    // Issue 17's two flows ran to their end.
    let (mut claimed, mut recovered) = (false, false);

    for step in &steps {
        let words: Vec<String> = step
            .words
            .iter()
            .map(|w| fill(w, &home, &cwd, &vars))
            .collect();
        let step_env: Vec<(String, String)> = step
            .env
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, &home, &cwd, &vars)))
            .collect();
        if words[0] == "export" {
            for w in &words[1..] {
                let (k, v) = w.split_once('=').expect("export VAR=value");
                exported.insert(k.to_owned(), v.to_owned());
            }
            continue;
        }
        let mut cmd = Command::new(bin());
        cmd.current_dir(&cwd)
            .env("HOME", &home)
            .env("SERMENT_PASSPHRASE", PASS)
            .env_remove("SERMENT_SERVER")
            .env_remove("SERMENT_HOME")
            .env_remove("SERMENT_DATA_DIR")
            .envs(&exported)
            .envs(step_env.iter().cloned());
        let serment_home = step_env
            .iter()
            .find(|(k, _)| k == "SERMENT_HOME")
            .map(|(_, v)| v.clone())
            .or_else(|| exported.get("SERMENT_HOME").cloned())
            .unwrap_or_else(|| home.join(".serment").display().to_string());

        if step.background {
            assert_eq!(words[1], "serve", "only the server runs in the background");
            cmd.args(&words[1..])
                .args(["--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let url = loop {
                let line = lines
                    .next()
                    .unwrap_or_else(|| panic!("`{}` exited before listening", step.line))
                    .unwrap();
                if let Some(u) = line.strip_prefix("serment: listening on ") {
                    break u.trim().to_owned();
                }
            };
            std::thread::spawn(move || for _ in lines {});
            // The README's URL (any http(s)://127.0.0.1:7878) now means this server.
            vars.insert("http://127.0.0.1:7878".into(), url.clone());
            vars.insert("https://127.0.0.1:7878".into(), url.clone());
            vars.insert("https://localhost:7878".into(), url);
            servers.push(Background(child));
            continue;
        }

        cmd.arg("--json").args(&words[1..]);
        let out = cmd.output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            code, step.expect,
            "README step `{}` exited {code}, expected {}\nstdout: {stdout}\nstderr: {stderr}",
            step.line, step.expect
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("`{}` printed no JSON: {stdout}\n{stderr}", step.line));
        match words[1].as_str() {
            "put" if !vars.contains_key("<DOC_ID>") => {
                let id = v["doc_id"].as_str().expect("put answers doc_id");
                vars.insert("<DOC_ID>".into(), id.to_owned());
            }
            "put" if words.iter().any(|w| w == "--to-unregistered") => {
                let code = v["unregistered"]["claim_code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("`{}` printed no claim code: {v}", step.line));
                vars.insert("<CLAIM_CODE>".into(), code.to_owned());
            }
            "claim" if v["otp_sent"] == true => {
                vars.insert("<OTP>".into(), newest_otp(&cwd.join("mail")));
            }
            "claim" => {
                assert!(
                    v["provisional_id"].is_string() && v["otp_sent"] == false,
                    "`{}` did not claim: {v}",
                    step.line
                );
                // The claim names the lab's handle the log shows for the device that sealed
                // the documents (the newcomer's H27): the one the README then adds.
                assert_eq!(v["lab"], "labo-biomed", "`{}`: {v}", step.line);
                claimed = true;
            }
            "id" if words.get(2).is_some_and(|w| w == "recovery-code") => {
                let code = stderr
                    .lines()
                    .find_map(|l| l.strip_prefix("serment: recovery code: "))
                    .unwrap_or_else(|| panic!("`{}` showed no recovery code: {stderr}", step.line));
                vars.insert("<RECOVERY_CODE>".into(), code.trim().to_owned());
            }
            "recover" => recovered = v["device_id"].is_string(),
            // Every `ls` lists something: the claimed patient's too (what the lab sealed for
            // the contact, now wrapped to the patient's own device).
            "ls" => assert!(
                v["documents"].as_array().is_some_and(|d| !d.is_empty()),
                "`{}` lists nothing: {v}",
                step.line
            ),
            "audit" => {
                assert_eq!(v["unreceipted"], 0, "`{}`: {v}", step.line);
                audits.push((serment_home, code));
            }
            "get" => assert_eq!(v["verified"], true, "`{}`: {v}", step.line),
            _ => {}
        }
    }

    assert!(!servers.is_empty(), "the walkthrough starts no server");
    // The README's server speaks HTTPS, and the clients reached it through the private CA.
    let url = vars
        .get("https://localhost:7878")
        .expect("the walkthrough starts a server");
    assert!(
        url.starts_with("https://"),
        "the walkthrough's server must serve TLS: {url}"
    );
    assert!(
        vars.contains_key("<DOC_ID>"),
        "the walkthrough uploads no document"
    );
    assert!(
        claimed,
        "the walkthrough must show a patient who had not registered claiming (issue 17 §1)"
    );
    assert!(
        recovered,
        "the walkthrough must show a recovery on a new machine (issue 17 §2)"
    );
    // It ends with a clean audit by each of the three users.
    for who in [".serment-lab", ".serment-patient", ".serment-gp"] {
        assert!(
            audits
                .iter()
                .any(|(h, code)| h.ends_with(who) && *code == 0),
            "the walkthrough must end with a clean `serment audit` for {who}: {audits:?}"
        );
    }
}

#[test]
fn shell_words_splits_like_sh_for_the_walkthrough() {
    let (w, c) = shell_words(r#"serment put a.pdf --title "Compte rendu" 'x y' # exit 4"#);
    assert_eq!(
        w,
        ["serment", "put", "a.pdf", "--title", "Compte rendu", "x y"]
    );
    assert_eq!(c, "exit 4");
    let steps = parse_steps(&["A_B=1 serment ls   # note".into(), "serment serve &".into()]);
    assert_eq!(steps[0].env, [("A_B".to_owned(), "1".to_owned())]);
    assert_eq!(steps[0].expect, 0);
    assert!(steps[1].background);
}
