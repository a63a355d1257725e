//! SMTP transports for the delivery engine (`sesame_core::delivery`).
//!
//! # Layout
//! - this file: one SMTP transaction over an open connection (MAIL, RCPT
//!   per recipient, DATA) and how replies become per-recipient outcomes:
//!   2xx delivered, 5xx failed, 4xx and connection errors deferred.
//! - [`relay`]: `--delivery relay`, through one smarthost with STARTTLS or
//!   implicit TLS and AUTH, reusing connections.
//! - [`direct`]: `--delivery direct`, to each domain's MX hosts (A/AAAA when
//!   there is no MX), opportunistic STARTTLS, connection reuse per host and
//!   a concurrency limit per domain.
//!
//! Connections use mail-send's client; MX lookups use hickory.

pub mod direct;
pub mod relay;

pub use direct::{DirectSettings, DirectTransport};
pub use relay::{RelayConfig, RelayTransport};

use mail_send::SmtpClient;
use sesame_core::delivery::Envelope;
use sesame_model::RecipientOutcome;
use sesame_model::delivery::BounceSubType;
use sesame_model::delivery::for_all;
use smtp_proto::{EhloResponse, Response};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connection's byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open, greeted and (if needed) authenticated SMTP connection.
pub struct Conn {
    pub client: SmtpClient<Box<dyn Stream>>,
    /// The server offered PIPELINING (RFC 2920): a transaction's commands
    /// go out in one write and their replies come back together.
    pub pipelining: bool,
    /// The server offered CHUNKING (RFC 3030) as well: the message goes
    /// out as one `BDAT n LAST` chunk in the same write as its envelope,
    /// so that a transaction takes one round trip instead of two and the
    /// message is sent as it is, without dot-stuffing.
    pub chunking: bool,
    /// The server offered SIZE (RFC 1870): `Some(0)` without a limit, else
    /// the largest message it takes.
    pub size: Option<usize>,
    /// The server offered 8BITMIME (RFC 6152): a message with 8-bit bytes
    /// is declared `BODY=8BITMIME`. (To a server that did not, it goes as
    /// it is, as Postfix sends it: rewriting it would break its DKIM
    /// signature.)
    pub eight_bit: bool,
    /// The connection is encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The local address the connection left from (SES's
    /// `ses:outgoing-ip`).
    pub local: Option<std::net::IpAddr>,
}

impl Conn {
    /// A connection whose server answered EHLO with `ehlo`; `tls` when it
    /// is encrypted, leaving from `local`.
    pub fn new<T: Stream + 'static>(
        c: SmtpClient<T>,
        ehlo: &EhloResponse<String>,
        tls: bool,
        local: Option<std::net::IpAddr>,
    ) -> Self {
        let pipelining = ehlo.has_capability(smtp_proto::EXT_PIPELINING);
        Self {
            tls,
            local,
            client: SmtpClient {
                stream: Box::new(c.stream) as Box<dyn Stream>,
                timeout: c.timeout,
            },
            pipelining,
            chunking: pipelining && ehlo.has_capability(smtp_proto::EXT_CHUNKING),
            size: ehlo
                .has_capability(smtp_proto::EXT_SIZE)
                .then_some(ehlo.size),
            eight_bit: ehlo.has_capability(smtp_proto::EXT_8BIT_MIME),
        }
    }

    /// Writes `group` (pipelined commands, and with BDAT the chunk) at
    /// once and reads `replies` replies, the last of them within `wait`.
    async fn exchange(
        &mut self,
        group: &[&[u8]],
        replies: usize,
        wait: Duration,
    ) -> Result<Vec<Response<String>>, mail_send::Error> {
        for part in group {
            self.write(part).await?;
        }
        self.flush().await?;
        tokio::time::timeout(wait, self.client.read_many(replies))
            .await
            .map_err(|_| mail_send::Error::Timeout)?
    }

    /// Writes the message as DATA's payload, dot-stuffed a piece at a time
    /// (see [`WRITE_CHUNK`]), so that a large message is never copied
    /// whole; then the terminator, and reads the reply.
    async fn data(&mut self, env: &Envelope<'_>) -> Result<Response<String>, mail_send::Error> {
        let mut stuffer = DotStuffer::default();
        let mut buf = Vec::with_capacity((env.len() * 3 / 2 + 8).min(WRITE_CHUNK * 7 / 4));
        for piece in env.parts().iter().flat_map(|p| p.chunks(WRITE_CHUNK / 2)) {
            stuffer.push(piece, &mut buf);
            if buf.len() >= WRITE_CHUNK {
                self.write(&buf).await?;
                buf.clear();
            }
        }
        stuffer.finish(&mut buf);
        self.exchange(&[&buf], 1, MESSAGE_REPLY_TIMEOUT)
            .await?
            .pop()
            .ok_or(mail_send::Error::UnparseableReply)
    }

    /// Writes `bytes` a block of at most [`WRITE_CHUNK`] at a time, each
    /// block within the command timeout (RFC 5321 4.5.3.2.5 times a data
    /// block, not the whole message): a large message to a slow server is
    /// bounded by its progress, not by its size.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), mail_send::Error> {
        use tokio::io::AsyncWriteExt;
        for block in bytes.chunks(WRITE_CHUNK) {
            tokio::time::timeout(self.client.timeout, self.client.stream.write_all(block))
                .await
                .map_err(|_| mail_send::Error::Timeout)??;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), mail_send::Error> {
        use tokio::io::AsyncWriteExt;
        tokio::time::timeout(self.client.timeout, self.client.stream.flush())
            .await
            .map_err(|_| mail_send::Error::Timeout)?
            .map_err(mail_send::Error::from)
    }
}

/// How long one command, or the write of one block of a message, may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the reply to a whole message (after DATA's terminator, or to
/// BDAT LAST) may take: RFC 5321 4.5.3.2.6's 10 minutes, Postfix's
/// `smtp_data_done_timeout`.
pub const MESSAGE_REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// The largest message copied into the buffer of the transaction's
/// commands, so that the transaction is one write; a larger one is written
/// from where it is (BDAT). DATA's payload is written whenever this much of
/// it is stuffed, a piece of half of it at a time: stuffing adds at most
/// half a piece (a `.` to a line of two bytes or more), so the buffer stays
/// under 1¾ of it, within core's `ATTEMPT_BUFFER`, which the delivery
/// memory budget counts.
const WRITE_CHUNK: usize = sesame_core::delivery::ATTEMPT_BUFFER / 2;

/// `550 5.1.1 text`, as SES's `diagnosticCode` quotes a reply.
pub fn reply_text(r: &Response<String>) -> String {
    let msg = r.message.trim().replace(['\r', '\n'], " ");
    if r.esc[0] > 0 {
        format!("{} {}.{}.{} {}", r.code, r.esc[0], r.esc[1], r.esc[2], msg)
    } else {
        format!("{} {}", r.code, msg)
    }
}

fn enhanced(r: &Response<String>) -> String {
    if r.esc[0] > 0 {
        format!("{}.{}.{}", r.esc[0], r.esc[1], r.esc[2])
    } else if r.code >= 500 {
        "5.0.0".into()
    } else {
        "4.0.0".into()
    }
}

/// SES's bounce subtype for a permanent failure's enhanced status code
/// (the model's rule, shared with inbound DSNs).
pub fn bounce_sub_type(status: &str) -> BounceSubType {
    BounceSubType::of_status(status)
}

/// A permanent failure with `status`, classified.
pub fn failed(status: &str, diagnostic: String) -> RecipientOutcome {
    RecipientOutcome::Failed {
        status: status.to_owned(),
        diagnostic,
        sub_type: bounce_sub_type(status),
    }
}

/// What a reply means for the recipients it concerns, or `None` for 2xx/3xx.
fn refusal(r: &Response<String>) -> Option<RecipientOutcome> {
    match r.code {
        500..=599 => Some(failed(&enhanced(r), format!("smtp; {}", reply_text(r)))),
        400..=499 => Some(RecipientOutcome::Deferred {
            reason: reply_text(r),
        }),
        _ if r.code < 200 || r.code >= 600 => Some(RecipientOutcome::Deferred {
            reason: format!("unexpected reply {}", reply_text(r)),
        }),
        _ => None,
    }
}

/// Runs one mail transaction. `Err` means the connection failed (it must
/// not be reused; every recipient not yet settled is deferred by the
/// caller). `Ok` gives every recipient's outcome, and the connection can
/// carry the next transaction.
pub async fn transact(
    conn: &mut Conn,
    env: &Envelope<'_>,
) -> Result<Vec<(String, RecipientOutcome)>, mail_send::Error> {
    use std::io::Write;
    let n = env.recipients.len();
    // A server that declares the largest message it takes gets none
    // larger (RFC 1870 6): it would refuse it, permanently, after reading
    // it whole.
    if let Some(limit) = conn.size.filter(|&l| l > 0 && env.len() > l) {
        return Ok(for_all(env.recipients, &too_large(env.len(), limit)));
    }
    // MAIL (with its size, and its body type when 8-bit) and each RCPT;
    // then, pipelined, DATA or the whole message as one BDAT chunk. A small
    // message goes in the same buffer, so that the transaction is one
    // write; a large one is written from where it is, not copied.
    let inline = conn.chunking && env.len() <= WRITE_CHUNK;
    let mut group = Vec::with_capacity(256 + if inline { env.len() } else { 0 });
    let _ = write!(group, "MAIL FROM:<{}>", env.mail_from);
    if conn.size.is_some() {
        let _ = write!(group, " SIZE={}", env.len());
    }
    if conn.eight_bit && !env.parts().iter().all(|p| p.is_ascii()) {
        group.extend_from_slice(b" BODY=8BITMIME");
    }
    group.extend_from_slice(b"\r\n");
    let rcpts_at = group.len();
    for r in env.recipients {
        let _ = write!(group, "RCPT TO:<{r}>\r\n");
    }
    // The replies to MAIL, each RCPT, and (pipelined) DATA or BDAT.
    let (mail_reply, rcpt_replies, last_reply) = if conn.pipelining {
        let mut rest: [&[u8]; 2] = [&[], &[]];
        if conn.chunking {
            let _ = write!(group, "BDAT {} LAST\r\n", env.len());
            if inline {
                env.parts().iter().for_each(|p| group.extend_from_slice(p));
            } else {
                rest = env.parts();
            }
        } else {
            group.extend_from_slice(b"DATA\r\n");
        }
        // With BDAT the last reply is the message's.
        let wait = match conn.chunking {
            true => MESSAGE_REPLY_TIMEOUT,
            false => conn.client.timeout,
        };
        let mut replies = conn
            .exchange(&[&group, rest[0], rest[1]], n + 2, wait)
            .await?;
        let last = replies.pop();
        let mail = replies.drain(..1).next();
        match (mail, last) {
            (Some(m), Some(l)) if replies.len() == n => (m, replies, Some(l)),
            _ => return Err(mail_send::Error::UnparseableReply),
        }
    } else {
        let m = conn.client.cmd(&group[..rcpts_at]).await?;
        if refusal(&m).is_some() {
            (m, vec![], None)
        } else {
            let mut replies = Vec::with_capacity(n);
            for line in group[rcpts_at..].split_inclusive(|&b| b == b'\n') {
                replies.push(conn.client.cmd(line).await?);
            }
            (m, replies, None)
        }
    };
    // A server that opened DATA for a refused transaction gets an empty
    // message's end; a BDAT chunk was already consumed (RFC 3030 4.2).
    let data_opened = !conn.chunking && last_reply.as_ref().is_some_and(|d| d.code == 354);
    if let Some(o) = refusal(&mail_reply) {
        if data_opened {
            conn.client.cmd(b".\r\n").await?;
        }
        let _ = conn.client.rset().await;
        return Ok(for_all(env.recipients, &o));
    }
    let mut out = Vec::with_capacity(n);
    let mut accepted = vec![];
    for (rcpt, r) in env.recipients.iter().zip(&rcpt_replies) {
        match refusal(r) {
            Some(o) => out.push((rcpt.clone(), o)),
            None => accepted.push(rcpt.clone()),
        }
    }
    if accepted.is_empty() {
        if data_opened {
            conn.client.cmd(b".\r\n").await?;
        }
        let _ = conn.client.rset().await;
        return Ok(out);
    }
    let outcome = if conn.chunking {
        // The BDAT LAST reply is the message's.
        let r = last_reply.ok_or(mail_send::Error::UnparseableReply)?;
        match refusal(&r) {
            Some(o) => {
                let _ = conn.client.rset().await;
                o
            }
            None => RecipientOutcome::Delivered {
                response: reply_text(&r),
            },
        }
    } else {
        let r = match last_reply {
            Some(r) => r,
            None => conn.client.cmd(b"DATA\r\n").await?,
        };
        if r.code == 354 {
            let r = conn.data(env).await?;
            refusal(&r).unwrap_or(RecipientOutcome::Delivered {
                response: reply_text(&r),
            })
        } else {
            let o = refusal(&r).unwrap_or(RecipientOutcome::Deferred {
                reason: format!("DATA was answered {}", reply_text(&r)),
            });
            let _ = conn.client.rset().await;
            o
        }
    };
    out.extend(accepted.into_iter().map(|r| (r, outcome.clone())));
    Ok(out)
}

/// A message larger than the server's declared limit: a permanent failure
/// with the status a server gives it (5.3.4, SES's `MessageTooLarge`). No
/// server said this, so the diagnostic says where it comes from.
fn too_large(size: usize, limit: usize) -> RecipientOutcome {
    failed(
        "5.3.4",
        format!(
            "smtp; 552 5.3.4 Message size exceeds fixed maximum message size: \
             the message is {size} bytes and the receiving server declared SIZE {limit}; \
             it was not sent"
        ),
    )
}

/// DATA's payload, a piece at a time: lines starting with `.` get another
/// (RFC 5321 4.5.2), and the terminator follows, after a CRLF of its own
/// only when the message does not end with one. (mail-send's
/// `write_message` always adds that CRLF, which would append an empty line
/// to every message that already ends with one; the receiver must get the
/// message byte for byte.)
struct DotStuffer {
    line_start: bool,
    /// The last two bytes of the message so far.
    tail: [u8; 2],
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self {
            line_start: true,
            tail: [0; 2],
        }
    }
}

impl DotStuffer {
    /// Appends `piece`, the next bytes of the message, stuffed, to `out`.
    fn push(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for line in piece.split_inclusive(|&b| b == b'\n') {
            if self.line_start && line[0] == b'.' {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            self.line_start = line.ends_with(b"\n");
        }
        match *piece {
            [] => {}
            [b] => self.tail = [self.tail[1], b],
            [.., a, b] => self.tail = [a, b],
        }
    }

    /// Appends the terminator to `out`.
    fn finish(self, out: &mut Vec<u8>) {
        if self.tail != *b"\r\n" {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Every recipient deferred, for `why`.
pub fn deferred_all(env: &Envelope<'_>, why: &str) -> Vec<(String, RecipientOutcome)> {
    let o = RecipientOutcome::Deferred {
        reason: why.to_owned(),
    };
    for_all(env.recipients, &o)
}

/// Every recipient's outcome when connecting to `remote` failed with `e`:
/// failed if the server refused us with a 5xx reply, else deferred.
pub fn connect_failed(
    env: &Envelope<'_>,
    remote: &str,
    e: &mail_send::Error,
) -> Vec<(String, RecipientOutcome)> {
    match permanent(e) {
        Some(o) => for_all(env.recipients, &o),
        None => deferred_all(env, &format!("{remote}: {}", error_text(e))),
    }
}

/// A connection error as a reason: the server's reply where there was one.
pub fn error_text(e: &mail_send::Error) -> String {
    match e {
        mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
            reply_text(r)
        }
        other => other.to_string(),
    }
}

/// Whether a connection error is permanent for every recipient: the
/// receiving server refused us with a 5xx reply at greeting or EHLO. A
/// failed AUTH is not: that is the operator's configuration to fix, and
/// the mail waits for it.
pub fn permanent(e: &mail_send::Error) -> Option<RecipientOutcome> {
    match e {
        mail_send::Error::UnexpectedReply(r) if r.code >= 500 => refusal(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

    /// A server that takes MAIL, each RCPT and DATA or BDAT pipelined, then
    /// reads the message 16 KiB every 10 ms, and accepts it. Returns the
    /// commands, and what came after them.
    async fn slow_server(io: DuplexStream, chunking: bool) -> (Vec<String>, Vec<u8>) {
        let (r, mut w) = tokio::io::split(io);
        let mut r = BufReader::new(r);
        let mut commands: Vec<String> = vec![];
        while !commands
            .last()
            .is_some_and(|c| c.starts_with("DATA") || c.starts_with("BDAT"))
        {
            let mut line = String::new();
            assert!(r.read_line(&mut line).await.unwrap() > 0, "{commands:?}");
            commands.push(line);
        }
        let ok = "250 ok\r\n".repeat(commands.len() - 1);
        let last = &commands[commands.len() - 1];
        let (mut got, mut block) = (Vec::new(), vec![0u8; 16 << 10]);
        let size = last.split_whitespace().nth(1).and_then(|n| n.parse().ok());
        if !chunking {
            let go = format!("{ok}354 go on\r\n");
            w.write_all(go.as_bytes()).await.unwrap();
        }
        while match size {
            Some(n) if chunking => got.len() < n,
            _ => !got.ends_with(b"\r\n.\r\n"),
        } {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let k = r.read(&mut block).await.unwrap();
            assert!(k > 0, "the client hung up after {} bytes", got.len());
            got.extend_from_slice(&block[..k]);
        }
        let done = match chunking {
            true => format!("{ok}250 2.0.0 queued\r\n"),
            false => "250 2.0.0 queued\r\n".to_owned(),
        };
        w.write_all(done.as_bytes()).await.unwrap();
        (commands, got)
    }

    fn conn(stream: DuplexStream, chunking: bool, size: Option<usize>, timeout: Duration) -> Conn {
        Conn {
            client: SmtpClient {
                stream: Box::new(stream) as Box<dyn Stream>,
                timeout,
            },
            pipelining: true,
            chunking,
            size,
            eight_bit: true,
            tls: false,
            local: None,
        }
    }

    /// With 8BITMIME offered, a message with 8-bit bytes is declared so
    /// (RFC 6152), and a 7-bit one is not.
    #[tokio::test]
    async fn an_eight_bit_message_is_declared() {
        let recipients = ["r@d.test".to_owned()];
        for (message, declared) in [
            (&b"Subject: s\r\n\r\nplain\r\n"[..], ""),
            (
                "Subject: s\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes(),
                " BODY=8BITMIME",
            ),
        ] {
            let env = Envelope {
                mail_from: "b@example.com",
                domain: "d.test",
                recipients: &recipients,
                signature: b"DKIM-Signature: v=1\r\n",
                message,
                require_tls: false,
            };
            let (ours, theirs) = tokio::io::duplex(16 << 10);
            let server = tokio::spawn(slow_server(theirs, false));
            let mut c = conn(ours, false, None, Duration::from_secs(5));
            transact(&mut c, &env).await.unwrap();
            let (commands, _) = server.await.unwrap();
            assert_eq!(
                commands[0],
                format!("MAIL FROM:<b@example.com>{declared}\r\n")
            );
        }
    }

    /// With SIZE offered, MAIL FROM declares the message's size (RFC
    /// 1870); a message over the server's declared limit is not sent at
    /// all, and bounces as too large (5.3.4).
    #[tokio::test]
    async fn a_servers_declared_size_is_told_and_kept() {
        let recipients = ["r@d.test".to_owned(), "s@d.test".to_owned()];
        let env = Envelope {
            mail_from: "b@example.com",
            domain: "d.test",
            recipients: &recipients,
            signature: b"DKIM-Signature: v=1\r\n",
            message: b"Subject: s\r\n\r\nbody\r\n",
            require_tls: false,
        };
        let size = env.len();
        for limit in [0, size] {
            let (ours, theirs) = tokio::io::duplex(16 << 10);
            let server = tokio::spawn(slow_server(theirs, false));
            let mut c = conn(ours, false, Some(limit), Duration::from_secs(5));
            let out = transact(&mut c, &env).await.unwrap();
            assert!(
                out.iter()
                    .all(|(_, o)| matches!(o, RecipientOutcome::Delivered { .. }))
            );
            let (commands, _) = server.await.unwrap();
            assert_eq!(
                commands[0],
                format!("MAIL FROM:<b@example.com> SIZE={size}\r\n")
            );
        }
        let (ours, mut theirs) = tokio::io::duplex(16 << 10);
        let mut c = conn(ours, false, Some(size - 1), Duration::from_secs(5));
        let out = transact(&mut c, &env).await.unwrap();
        assert_eq!(out.len(), 2);
        for (_, o) in &out {
            let RecipientOutcome::Failed {
                status,
                diagnostic,
                sub_type,
            } = o
            else {
                panic!("not failed: {o:?}")
            };
            assert_eq!(status, "5.3.4");
            assert_eq!(*sub_type, BounceSubType::MessageTooLarge);
            assert!(
                diagnostic.contains(&format!("is {size} bytes")),
                "{diagnostic}"
            );
            assert!(
                diagnostic.contains(&format!("SIZE {}", size - 1)),
                "{diagnostic}"
            );
        }
        drop(c);
        let mut sent = vec![];
        theirs.read_to_end(&mut sent).await.unwrap();
        assert!(sent.is_empty(), "nothing was sent: {sent:?}");
    }

    /// A 2 MiB message to a server that reads it in 1.3 s goes through
    /// with a 500 ms command timeout, over DATA and BDAT: the timeout
    /// applies to each block written (RFC 5321 4.5.3.2.5), not to the
    /// whole message, which a large message to a slow server would never
    /// meet.
    #[tokio::test]
    async fn a_large_message_to_a_slow_server_is_timed_a_block_at_a_time() {
        let signature = b"DKIM-Signature: v=1; d=example.com\r\n";
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwx\r\n";
        let message = [
            &b"Subject: big\r\n\r\n"[..],
            &line.repeat((2 << 20) / line.len()),
        ]
        .concat();
        let recipients = ["r@d.test".to_owned()];
        let env = Envelope {
            mail_from: "b@example.com",
            domain: "d.test",
            recipients: &recipients,
            signature,
            message: &message,
            require_tls: false,
        };
        for chunking in [false, true] {
            let (ours, theirs) = tokio::io::duplex(16 << 10);
            let server = tokio::spawn(slow_server(theirs, chunking));
            let mut conn = conn(ours, chunking, None, Duration::from_millis(500));
            let out = transact(&mut conn, &env)
                .await
                .expect("the transaction went through");
            assert_eq!(
                out,
                vec![(
                    "r@d.test".to_owned(),
                    RecipientOutcome::Delivered {
                        response: "250 2.0.0 queued".into()
                    }
                )],
                "chunking: {chunking}"
            );
            let mut sent = env.to_vec();
            if !chunking {
                sent.extend_from_slice(b".\r\n");
            }
            assert!(server.await.unwrap().1 == sent, "chunking: {chunking}");
        }
    }

    #[test]
    fn dot_stuffing_keeps_the_message_intact() {
        let stuffed = |pieces: &[&[u8]]| {
            let (mut s, mut out) = (DotStuffer::default(), vec![]);
            pieces.iter().for_each(|p| s.push(p, &mut out));
            s.finish(&mut out);
            out
        };
        assert_eq!(stuffed(&[b"a\r\n.b\r\n"]), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuffed(&[b".x"]), b"..x\r\n.\r\n");
        assert_eq!(stuffed(&[b"a\r\n"]), b"a\r\n.\r\n");
        assert_eq!(stuffed(&[b"a\r\n\r\n"]), b"a\r\n\r\n.\r\n");
        assert_eq!(stuffed(&[]), b"\r\n.\r\n");
        // Pieces join where they meet: a line that starts a piece, a CRLF
        // split between pieces, a one-byte piece, an empty one.
        assert_eq!(stuffed(&[b"h: v\r\n", b".b\r\n"]), b"h: v\r\n..b\r\n.\r\n");
        assert_eq!(
            stuffed(&[b"a\r", b"\n", b"", b".", b"c"]),
            b"a\r\n..c\r\n.\r\n"
        );
        assert_eq!(stuffed(&[b"a\r", b"\n"]), b"a\r\n.\r\n");
        assert_eq!(stuffed(&[b"x.", b"y\r\n"]), b"x.y\r\n.\r\n");
        // Whatever the pieces, the result is the one-piece result.
        let m = b"Subject: s\r\n\r\n.one\r\ntwo\r\n..three\n.\r\nend";
        let whole = stuffed(&[m]);
        for at in 0..=m.len() {
            let (a, b) = m.split_at(at);
            assert_eq!(stuffed(&[a, b]), whole, "split at {at}");
        }
    }

    #[test]
    fn replies_are_classified() {
        let r = |code, esc: [u8; 3], m: &str| Response {
            code,
            esc,
            message: m.to_owned(),
        };
        assert_eq!(
            refusal(&r(550, [5, 1, 1], "no such user")),
            Some(RecipientOutcome::Failed {
                status: "5.1.1".into(),
                diagnostic: "smtp; 550 5.1.1 no such user".into(),
                sub_type: BounceSubType::NoEmail,
            })
        );
        assert_eq!(
            refusal(&r(451, [0, 0, 0], "later")),
            Some(RecipientOutcome::Deferred {
                reason: "451 later".into()
            })
        );
        assert_eq!(refusal(&r(250, [2, 0, 0], "ok")), None);
    }
}
