//! One-time codes by email (issue 17 §1, PROTOCOL.md §15): the SMTP transport of `lettre`, on
//! tokio, TLS by rustls with the ring provider. The mail carries the code and its lifetime only:
//! no document id, no claim code, no name.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long the relay may take to answer, per step.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a mail could not be built or sent. The messages name no address and no code.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `smtp_url` is not an SMTP URL lettre accepts, nor `file:///DIR`.
    #[error(
        "not an SMTP URL (smtp://HOST[:PORT][?tls=required], smtps://HOST[:PORT], or file:///DIR)"
    )]
    Url,
    /// Plain `smtp://` (no `tls=required`) to a host that is not a loopback address (review S8):
    /// the one-time codes would cross the network in clear.
    #[error(
        "plain smtp:// sends the one-time codes in clear: only to a loopback relay; add \
         ?tls=required or use smtps://"
    )]
    PlainRemote,
    /// `smtp_from` or the recipient is not an email address.
    #[error("{0} is not an email address")]
    Address(&'static str),
    /// The relay refused the mail or could not be reached.
    #[error("the SMTP relay did not take the mail: {0}")]
    Send(String),
}

/// An SMTP relay and the `From:` address. `Debug` shows neither the URL (it may hold a password)
/// nor the address.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// Where mails go.
#[derive(Clone)]
enum Transport {
    /// An SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `file:///DIR`: each mail written to a new file in DIR (the demo, tests; never a relay).
    Dir(std::path::PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer(<smtp_url>)")
    }
}

impl Mailer {
    /// A mailer for `url` (`smtp_url`) sending from `from` (`smtp_from`). Connects only when a
    /// mail is sent.
    ///
    /// # Errors
    /// [`MailError::Url`], [`MailError::Address`].
    pub fn new(url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = match url.strip_prefix("file://") {
            Some(dir) if dir.starts_with('/') => Transport::Dir(std::path::PathBuf::from(dir)),
            Some(_) => return Err(MailError::Url),
            None if plain_to_remote(url) => return Err(MailError::PlainRemote),
            None => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| MailError::Url)?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        };
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| MailError::Address("smtp_from"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends the one-time code `code` to `to`, valid `ttl_secs`.
    ///
    /// # Errors
    /// [`MailError::Address`] for a bad recipient, [`MailError::Send`] if the relay fails.
    pub async fn send_code(&self, to: &str, code: &str, ttl_secs: u64) -> Result<(), MailError> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|_| MailError::Address("the recipient"))?;
        let body = format!(
            "Your Serment one-time code is: {code}\n\n\
             It is valid for {} minutes and can be used once. Enter it with the claim code \
             printed on your receipt (serment claim --code ... --otp ...).\n\n\
             If you did not ask for it: only someone holding the claim code printed on your \
             receipt can ask for this mail, so someone else may have your receipt. Do not give \
             this code to anyone, and tell the laboratory that gave you the receipt: it can \
             issue you a new claim code.\n",
            ttl_secs / 60
        );
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Your Serment one-time code")
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Send(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Dir(dir) => {
                let mut name = [0u8; 16];
                serment_core::rng::fill(&mut name).map_err(|e| MailError::Send(e.to_string()))?;
                let name = hex::encode(name);
                write_mail(dir, &name, &msg.formatted())
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))
            }
        }
    }
}

/// Writes one mail into `dir` (`file:///DIR`), created if absent (0700): the mail holds a
/// one-time code, so the file is 0600, written under a temporary name and renamed to
/// `NAME.eml` once complete (a reader never sees half a mail).
async fn write_mail(dir: &std::path::Path, name: &str, mail: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(dir).await?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .await?;
    f.write_all(mail).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&tmp, dir.join(format!("{name}.eml"))).await
}

/// Whether `url` is plain `smtp://` without `tls=required` to a host that is not loopback
/// (`localhost`, 127.0.0.0/8, `[::1]`): refused (review S8, docs/CONFIG.md `smtp_url`).
fn plain_to_remote(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("smtp://") else {
        return false;
    };
    if rest
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv == "tls=required"))
    {
        return false;
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(h) => h.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    !(host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_is_refused_unless_the_relay_is_on_loopback() {
        for bad in [
            "smtp://relay.example.org",
            "smtp://user:pw@relay.example.org:25",
            "smtp://10.0.0.5:2525?tls=opportunistic",
        ] {
            assert!(
                matches!(
                    Mailer::new(bad, "lab@example.org"),
                    Err(MailError::PlainRemote)
                ),
                "{bad}"
            );
        }
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost",
            "smtp://[::1]:25",
            "smtp://relay.example.org?tls=required",
            "smtps://relay.example.org",
        ] {
            assert!(Mailer::new(ok, "lab@example.org").is_ok(), "{ok}");
        }
    }
}
