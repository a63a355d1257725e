//! SMTP submission, as SES's SMTP interface: port 587 with STARTTLS and
//! 465 with implicit TLS (rustls), AUTH PLAIN and LOGIN only once the
//! session is encrypted, with SES SMTP credentials (the access key ID and
//! the version 4 password derived from its secret and the listener's
//! region). Commands are parsed by Stalwart's smtp-proto; a message goes
//! through `SendService::send` as `SendSmtpEmail`, so every rule of the API
//! applies (verified senders, the sandbox, quotas, suppression,
//! configuration sets), and its refusals are SES's SMTP replies.

use crate::api::App;
use sesame_core::Resolution;
use sesame_core::sending::{Content, Outgoing};
use sesame_model::{Error, ErrorKind, Region, Scope};
use smtp_proto::Request;
use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, RequestReceiver,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// SES's limit on a message sent through SMTP.
pub const MAX_MESSAGE: usize = 10 << 20;
/// SES's limit on recipients a message.
const MAX_RECIPIENTS: usize = 50;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(60);
/// Sessions at once, over both listeners.
const MAX_SESSIONS: usize = 512;
/// Failed AUTH attempts before the session is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// What the listeners share.
pub struct Submission {
    /// The send path and the credentials, the API's own.
    pub app: Arc<App>,
    /// DSNs and ARF reports taken by the inbound listener.
    pub inbound: Option<Arc<sesame_core::feedback::inbound::InboundFeedback>>,
    pub region: Region,
    pub hostname: String,
    pub tls: TlsAcceptor,
    sessions: Arc<Semaphore>,
}

impl Submission {
    pub fn new(
        app: Arc<App>,
        region: Region,
        hostname: String,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self {
            app,
            inbound: None,
            region,
            hostname,
            tls: TlsAcceptor::from(tls),
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
        }
    }
}

/// The TLS configuration: the operator's PEM certificate and key, or a
/// self-signed certificate for `hostname` (`--dev`).
pub fn tls_config(
    cert: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    hostname: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (certs, key) = match cert {
        Some((c, k)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c)
                .map_err(|e| format!("cannot read the certificate {}: {e}", c.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cannot read the certificate {}: {e}", c.display()))?;
            let key = PrivateKeyDer::from_pem_file(k)
                .map_err(|e| format!("cannot read the private key {}: {e}", k.display()))?;
            (certs, key)
        }
        None => {
            let made = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])
                .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
            let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
                .map_err(|e| format!("cannot use the self-signed key: {e}"))?;
            (vec![made.cert.der().clone()], key)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("cannot use the certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Submission on 587: STARTTLS, then AUTH.
    StartTls,
    /// Submission on 465: TLS from the start.
    ImplicitTls,
    /// The bounce domain's MX: DSNs and ARF reports for Sesame's return
    /// paths, no AUTH, opportunistic STARTTLS.
    Inbound,
}

/// Accepts sessions until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    mode: Mode,
    sub: Arc<Submission>,
    mut stop: watch::Receiver<bool>,
) {
    let implicit_tls = mode == Mode::ImplicitTls;
    let inbound = mode == Mode::Inbound;
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let Ok(permit) = sub.sessions.clone().try_acquire_owned() else {
                    // Full: a short refusal, and the connection closes.
                    let mut tcp = tcp;
                    let _ = tcp.write_all(b"421 4.7.0 Too many connections, try again later\r\n").await;
                    continue;
                };
                let sub = sub.clone();
                sessions.spawn(async move {
                    let _permit = permit;
                    let _ = tcp.set_nodelay(true);
                    let result = if implicit_tls {
                        match tokio::time::timeout(IDLE, sub.tls.accept(tcp)).await {
                            Ok(Ok(tls)) => Session::new(&sub, peer, true, false).run(tls).await.map(drop),
                            _ => Ok(()),
                        }
                    } else {
                        Session::new(&sub, peer, false, inbound).run_plain(tcp).await
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "SMTP session ended");
                    }
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stop.changed() => {
                if *stop.borrow() {
                    break;
                }
            }
        }
    }
    sessions.abort_all();
}

/// Where a session is in its conversation.
enum Step {
    Commands,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass(String),
    Data(DataReceiver),
    Discard(DummyDataReceiver),
    Bdat(BdatReceiver),
}

struct Session<'a> {
    sub: &'a Submission,
    peer: SocketAddr,
    tls: bool,
    /// The inbound MX rather than submission.
    inbound: bool,
    helo: bool,
    scope: Option<Scope>,
    auth_failures: u32,
    from: Option<String>,
    to: Vec<String>,
    message: Vec<u8>,
    too_large: bool,
    step: Step,
    /// The greeting is sent unless the session follows STARTTLS.
    greet: bool,
}

/// What the session does after a command.
enum Flow {
    Continue,
    Quit,
    StartTls,
}

/// A session's end: `Some(stream)` when STARTTLS asks for the upgrade.
type Ended<S> = std::io::Result<Option<S>>;

impl<'a> Session<'a> {
    fn new(sub: &'a Submission, peer: SocketAddr, tls: bool, inbound: bool) -> Self {
        Self {
            sub,
            peer,
            tls,
            inbound,
            helo: false,
            scope: None,
            auth_failures: 0,
            from: None,
            to: vec![],
            message: vec![],
            too_large: false,
            step: Step::Commands,
            greet: true,
        }
    }

    /// Port 587: in the clear until STARTTLS, then a new session over TLS.
    async fn run_plain(self, tcp: TcpStream) -> std::io::Result<()> {
        let sub = self.sub;
        let peer = self.peer;
        let inbound = self.inbound;
        if let Some(tcp) = self.run(tcp).await? {
            let tls = tokio::time::timeout(IDLE, sub.tls.accept(tcp))
                .await
                .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
            // RFC 3207: the session starts over, without a greeting.
            let mut again = Session::new(sub, peer, true, inbound);
            again.greet = false;
            again.run(tls).await?;
        }
        Ok(())
    }
}

impl<'a> Session<'a> {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut io: S) -> Ended<S> {
        if self.greet {
            io.write_all(
                format!(
                    "220 {} ESMTP Sesame SimpleEmailService\r\n",
                    self.sub.hostname
                )
                .as_bytes(),
            )
            .await?;
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut receiver = RequestReceiver::default();
        loop {
            let n = match tokio::time::timeout(IDLE, io.read(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => {
                    io.write_all(b"421 4.4.2 Timeout waiting for data from client.\r\n")
                        .await?;
                    return Ok(None);
                }
            };
            if n == 0 {
                return Ok(None);
            }
            let mut out = Vec::new();
            let mut bytes = buf[..n].iter();
            let mut end = Flow::Continue;
            while bytes.len() > 0 && matches!(end, Flow::Continue) {
                end = self.step(&mut receiver, &mut bytes, &mut out).await;
            }
            if !out.is_empty() {
                io.write_all(&out).await?;
                io.flush().await?;
            }
            match end {
                Flow::Continue => {}
                Flow::Quit => return Ok(None),
                Flow::StartTls => return Ok(Some(io)),
            }
        }
    }
}

/// A reply line.
fn reply(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Session<'_> {
    /// Takes what it can of `bytes` for the step the session is at.
    async fn step(
        &mut self,
        receiver: &mut RequestReceiver,
        bytes: &mut std::slice::Iter<'_, u8>,
        out: &mut Vec<u8>,
    ) -> Flow {
        match std::mem::replace(&mut self.step, Step::Commands) {
            Step::Commands => {}
            step @ (Step::AuthPlain | Step::AuthLoginUser | Step::AuthLoginPass(_)) => {
                return self.auth_line(step, bytes, out).await;
            }
            Step::Data(mut data) => {
                if self.message.len() > MAX_MESSAGE {
                    self.too_large = true;
                    self.step = Step::Discard(DummyDataReceiver::new_data(&data));
                    return Flow::Continue;
                }
                if data.ingest(bytes, &mut self.message) {
                    self.finish(out).await;
                } else {
                    self.step = Step::Data(data);
                }
                return Flow::Continue;
            }
            Step::Discard(mut d) => {
                if d.ingest(bytes) {
                    self.finish(out).await;
                } else {
                    self.step = Step::Discard(d);
                }
                return Flow::Continue;
            }
            Step::Bdat(mut b) => {
                if b.ingest(bytes, &mut self.message) {
                    if self.message.len() > MAX_MESSAGE {
                        self.too_large = true;
                    }
                    if b.is_last {
                        self.finish(out).await;
                    } else {
                        reply(out, "250 2.0.0 Chunk accepted");
                    }
                } else {
                    self.step = Step::Bdat(b);
                }
                return Flow::Continue;
            }
        }
        let request = match receiver.ingest(bytes) {
            Ok(r) => r.into_owned(),
            Err(smtp_proto::Error::NeedsMoreData { .. }) => return Flow::Continue,
            Err(smtp_proto::Error::ResponseTooLong) => {
                reply(out, "500 5.5.2 Line too long");
                return Flow::Continue;
            }
            Err(smtp_proto::Error::UnknownCommand) => {
                reply(out, "500 5.5.1 Command unrecognized");
                return Flow::Continue;
            }
            Err(e) => {
                reply(out, &format!("501 5.5.4 Syntax error: {}", syntax(&e)));
                return Flow::Continue;
            }
        };
        self.command(request, out).await
    }

    async fn command(&mut self, request: Request<String>, out: &mut Vec<u8>) -> Flow {
        match request {
            Request::Ehlo { host: _ } => {
                self.helo = true;
                self.reset();
                // SES's greeting line is its host name alone.
                let mut lines = vec![
                    self.sub.hostname.clone(),
                    "8BITMIME".into(),
                    format!("SIZE {MAX_MESSAGE}"),
                    "PIPELINING".into(),
                    "CHUNKING".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if !self.tls {
                    lines.push("STARTTLS".into());
                } else if !self.inbound {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                let last = lines.len() - 1;
                for (i, l) in lines.iter().enumerate() {
                    reply(out, &format!("250{}{l}", if i == last { ' ' } else { '-' }));
                }
            }
            Request::Helo { host: _ } => {
                self.helo = true;
                self.reset();
                reply(out, &format!("250 {}", self.sub.hostname));
            }
            Request::Lhlo { .. } => reply(out, "502 5.5.1 LHLO is not served here"),
            Request::StartTls => {
                if self.tls {
                    reply(out, "503 5.5.1 Already in TLS");
                } else {
                    reply(out, "220 2.0.0 Ready to start TLS");
                    return Flow::StartTls;
                }
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                if self.inbound {
                    reply(out, "503 5.5.1 AUTH is not available here");
                } else if !self.tls {
                    reply(out, "530 Must issue a STARTTLS command first");
                } else if self.scope.is_some() {
                    reply(out, "503 5.5.1 Already authenticated");
                } else if mechanism == smtp_proto::AUTH_PLAIN {
                    if initial_response.is_empty() {
                        self.step = Step::AuthPlain;
                        reply(out, "334 ");
                    } else {
                        let flow = self.auth_plain(&initial_response, out).await;
                        return flow;
                    }
                } else if mechanism == smtp_proto::AUTH_LOGIN {
                    if initial_response.is_empty() {
                        self.step = Step::AuthLoginUser;
                        reply(out, "334 VXNlcm5hbWU6");
                    } else {
                        match decode(&initial_response) {
                            Some(user) => {
                                self.step = Step::AuthLoginPass(user);
                                reply(out, "334 UGFzc3dvcmQ6");
                            }
                            None => reply(out, "501 5.5.2 Invalid base64"),
                        }
                    }
                } else {
                    reply(out, "504 5.5.4 Unrecognized authentication type");
                }
            }
            Request::Mail { from } => {
                if self.inbound {
                    if self.from.is_some() {
                        reply(out, "503 5.5.1 Sender already given");
                    } else {
                        self.from = Some(from.address);
                        reply(out, "250 Ok");
                    }
                } else if !self.tls {
                    reply(out, "530 Must issue a STARTTLS command first");
                } else if self.scope.is_none() {
                    reply(out, "530 Authentication required");
                } else if self.from.is_some() {
                    reply(out, "503 5.5.1 Sender already given");
                } else if from.size > MAX_MESSAGE {
                    reply(
                        out,
                        "552 5.3.4 Message size exceeds fixed maximum message size",
                    );
                } else {
                    self.from = Some(from.address);
                    reply(out, "250 Ok");
                }
            }
            Request::Rcpt { to } => {
                if self.from.is_none() {
                    reply(out, "503 5.5.1 Need MAIL before RCPT");
                } else if self.to.len() >= MAX_RECIPIENTS {
                    reply(out, "452 4.5.3 Too many recipients");
                } else if to.address.is_empty() {
                    reply(out, "501 5.1.3 Bad recipient address syntax");
                } else if let (true, Some(inbound)) = (self.inbound, &self.sub.inbound) {
                    match inbound.accepts(&to.address).await {
                        Ok(true) => {
                            self.to.push(to.address);
                            reply(out, "250 Ok");
                        }
                        Ok(false) => reply(
                            out,
                            "550 5.1.1 Recipient address rejected: not a return path of this server",
                        ),
                        Err(_) => reply(out, "451 4.3.0 Temporary failure"),
                    }
                } else {
                    self.to.push(to.address);
                    reply(out, "250 Ok");
                }
            }
            Request::Data => {
                if self.from.is_none() || self.to.is_empty() {
                    reply(out, "503 5.5.1 Need MAIL and RCPT before DATA");
                } else {
                    self.message.clear();
                    self.too_large = false;
                    self.step = Step::Data(DataReceiver::new());
                    reply(out, "354 End data with <CR><LF>.<CR><LF>");
                }
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                if self.from.is_none() || self.to.is_empty() {
                    self.step = Step::Discard(DummyDataReceiver::new_bdat(chunk_size));
                    reply(out, "503 5.5.1 Need MAIL and RCPT before BDAT");
                } else if self.message.len().saturating_add(chunk_size) > MAX_MESSAGE {
                    self.too_large = true;
                    self.step = Step::Discard(DummyDataReceiver::new_bdat(chunk_size));
                    if is_last {
                        // `finish` replies once the chunk is read.
                    } else {
                        reply(
                            out,
                            "552 5.3.4 Message size exceeds fixed maximum message size",
                        );
                    }
                } else {
                    self.step = Step::Bdat(BdatReceiver::new(chunk_size, is_last));
                }
            }
            Request::Rset => {
                self.reset();
                reply(out, "250 Ok");
            }
            Request::Noop { .. } => reply(out, "250 Ok"),
            Request::Quit => {
                reply(out, "221 Bye");
                return Flow::Quit;
            }
            Request::Vrfy { .. } | Request::Expn { .. } => {
                reply(out, "252 2.1.5 Cannot VRFY user");
            }
            other => reply(
                out,
                &format!("502 5.5.1 {} is not implemented", other.name()),
            ),
        }
        Flow::Continue
    }

    /// A line of an AUTH exchange.
    async fn auth_line(
        &mut self,
        step: Step,
        bytes: &mut std::slice::Iter<'_, u8>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let rest = bytes.as_slice();
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            // Lines are short; wait for the rest (kept by the caller's next read).
            *bytes = [].iter();
            reply(out, "501 5.5.2 Incomplete authentication line");
            return Flow::Continue;
        };
        let line = String::from_utf8_lossy(&rest[..end]).trim().to_owned();
        *bytes = rest[end + 1..].iter();
        if line == "*" {
            reply(out, "501 5.7.0 Authentication cancelled");
            return Flow::Continue;
        }
        match step {
            Step::AuthPlain => return self.auth_plain(&line, out).await,
            Step::AuthLoginUser => match decode(&line) {
                Some(user) => {
                    self.step = Step::AuthLoginPass(user);
                    reply(out, "334 UGFzc3dvcmQ6");
                }
                None => reply(out, "501 5.5.2 Invalid base64"),
            },
            Step::AuthLoginPass(user) => match decode(&line) {
                Some(pass) => return self.login(&user, &pass, out).await,
                None => reply(out, "501 5.5.2 Invalid base64"),
            },
            _ => {}
        }
        Flow::Continue
    }

    async fn auth_plain(&mut self, response: &str, out: &mut Vec<u8>) -> Flow {
        use base64::Engine;
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(response.trim()) else {
            reply(out, "501 5.5.2 Invalid base64");
            return Flow::Continue;
        };
        let mut parts = raw.split(|b| *b == 0);
        let (_authzid, user, pass) = (parts.next(), parts.next(), parts.next());
        match (user, pass) {
            (Some(u), Some(p)) => {
                let (u, p) = (
                    String::from_utf8_lossy(u).into_owned(),
                    String::from_utf8_lossy(p).into_owned(),
                );
                self.login(&u, &p, out).await
            }
            _ => {
                reply(out, "501 5.5.2 Invalid PLAIN response");
                Flow::Continue
            }
        }
    }

    /// SES SMTP credentials: the access key ID and its SMTP password for
    /// this listener's region.
    async fn login(&mut self, user: &str, pass: &str, out: &mut Vec<u8>) -> Flow {
        let region = self.sub.region.as_str();
        let account = match self.sub.app.credentials.resolve(user.trim()).await {
            Ok(Resolution::Verify { secret, account })
                if sesame_sigv4::smtp_password_matches(&secret, region, pass) =>
            {
                Some(account)
            }
            Ok(Resolution::AcceptUnverified { account }) => Some(account),
            _ => None,
        };
        match account {
            Some(account) => {
                tracing::info!(peer = %self.peer, access_key_id = %user.trim(), "SMTP session authenticated");
                self.scope = Some(Scope::new(account, self.sub.region.clone()));
                reply(out, "235 Authentication successful.");
                Flow::Continue
            }
            None => {
                self.auth_failures += 1;
                tracing::info!(peer = %self.peer, "SMTP authentication refused");
                reply(out, "535 Authentication Credentials Invalid");
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    reply(out, "421 4.7.0 Too many authentication failures");
                    return Flow::Quit;
                }
                Flow::Continue
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
        self.message.clear();
        self.too_large = false;
    }

    /// The message is in: through the send path, and SES's reply.
    async fn finish(&mut self, out: &mut Vec<u8>) {
        if let (true, Some(inbound)) = (self.inbound, self.sub.inbound.clone()) {
            let too_large = self.too_large;
            let raw = std::mem::take(&mut self.message);
            let rcpts = std::mem::take(&mut self.to);
            self.reset();
            if too_large {
                reply(
                    out,
                    "552 5.3.4 Message size exceeds fixed maximum message size",
                );
                return;
            }
            match inbound.receive(&rcpts, &raw).await {
                Ok(_) => reply(out, "250 Ok"),
                Err(_) => reply(out, "451 4.3.0 Temporary failure"),
            }
            return;
        }
        let (Some(scope), Some(from)) = (self.scope.clone(), self.from.clone()) else {
            self.reset();
            reply(out, "503 5.5.1 Bad sequence of commands");
            return;
        };
        if self.too_large {
            self.reset();
            reply(
                out,
                "552 5.3.4 Message size exceeds fixed maximum message size",
            );
            return;
        }
        let (raw, configuration_set, tags) = ses_headers(std::mem::take(&mut self.message));
        let mut o = Outgoing::new("SendSmtpEmail", Content::Raw(raw));
        o.source = Some(from);
        o.destinations = std::mem::take(&mut self.to);
        o.configuration_set = configuration_set;
        o.tags = tags;
        o.source_ip = Some(self.peer.ip().to_canonical().to_string());
        let result = self.sub.app.ses.sending.send(&scope, o).await;
        self.reset();
        match result {
            Ok(id) => reply(out, &format!("250 Ok {id}")),
            Err(e) => reply(out, &smtp_refusal(&e)),
        }
    }
}

/// SES's SMTP reply for a refused send.
pub fn smtp_refusal(e: &Error) -> String {
    match e.kind {
        ErrorKind::MessageRejected => format!("554 Message rejected: {}", e.message),
        ErrorKind::RateExceeded => "454 Throttling failure: Maximum sending rate exceeded.".into(),
        ErrorKind::DailyQuotaExceeded => {
            "454 Throttling failure: Daily message quota exceeded.".into()
        }
        ErrorKind::Internal => "451 4.3.0 Temporary service failure".into(),
        _ => format!("554 Transaction failed: {}", e.message),
    }
}

fn decode(b64: &str) -> Option<String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn syntax(e: &smtp_proto::Error) -> String {
    match e {
        smtp_proto::Error::SyntaxError { syntax } => syntax.to_string(),
        smtp_proto::Error::InvalidSenderAddress => "invalid sender address".into(),
        smtp_proto::Error::InvalidRecipientAddress => "invalid recipient address".into(),
        smtp_proto::Error::InvalidParameter { param } => format!("invalid parameter {param}"),
        smtp_proto::Error::UnsupportedParameter { param } => {
            format!("unsupported parameter {param}")
        }
        _ => "bad command".into(),
    }
}

/// SES's `X-SES-CONFIGURATION-SET` and `X-SES-MESSAGE-TAGS` headers: read
/// and removed from the message (folded lines with them).
fn ses_headers(raw: Vec<u8>) -> (Vec<u8>, Option<String>, Vec<(String, String)>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(end);
    let mut kept: Vec<u8> = Vec::with_capacity(raw.len());
    let mut set = None;
    let mut tags = vec![];
    let mut current: Option<(String, String)> = None;
    let mut skipping = false;
    let flush = |c: &mut Option<(String, String)>,
                 set: &mut Option<String>,
                 tags: &mut Vec<(String, String)>| {
        if let Some((name, value)) = c.take() {
            if name.eq_ignore_ascii_case("x-ses-configuration-set") {
                *set = Some(value.trim().to_owned());
            } else {
                for pair in value.split(',') {
                    if let Some((k, v)) = pair.split_once('=') {
                        tags.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
            }
        }
    };
    for line in head.split_inclusive(|b| *b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if folded {
            if skipping {
                if let Some((_, v)) = current.as_mut() {
                    v.push_str(String::from_utf8_lossy(line).trim_end());
                }
                continue;
            }
            kept.extend_from_slice(line);
            continue;
        }
        flush(&mut current, &mut set, &mut tags);
        let text = String::from_utf8_lossy(line);
        let name = text.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("x-ses-configuration-set")
            || name.eq_ignore_ascii_case("x-ses-message-tags")
        {
            skipping = true;
            let value = text
                .split_once(':')
                .map(|(_, v)| v)
                .unwrap_or("")
                .trim_end()
                .to_owned();
            current = Some((name.to_owned(), value));
        } else {
            skipping = false;
            kept.extend_from_slice(line);
        }
    }
    flush(&mut current, &mut set, &mut tags);
    kept.extend_from_slice(body);
    (kept, set.filter(|s| !s.is_empty()), tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ses_headers_are_read_and_removed() {
        let raw = b"From: a@x.test\r\nX-SES-CONFIGURATION-SET: cs\r\nX-SES-MESSAGE-TAGS: campaign=spring,\r\n  team=growth\r\nSubject: hi\r\n\r\nX-SES-CONFIGURATION-SET: body stays\r\n".to_vec();
        let (kept, set, tags) = ses_headers(raw);
        assert_eq!(set.as_deref(), Some("cs"));
        assert_eq!(
            tags,
            vec![
                ("campaign".to_owned(), "spring".to_owned()),
                ("team".to_owned(), "growth".to_owned())
            ]
        );
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            "From: a@x.test\r\nSubject: hi\r\n\r\nX-SES-CONFIGURATION-SET: body stays\r\n"
        );
    }

    #[test]
    fn refusals_are_ses_replies() {
        let e = Error::new(
            ErrorKind::MessageRejected,
            "Email address is not verified. x",
        );
        assert_eq!(
            smtp_refusal(&e),
            "554 Message rejected: Email address is not verified. x"
        );
        let e = Error::new(ErrorKind::RateExceeded, "Maximum sending rate exceeded");
        assert_eq!(
            smtp_refusal(&e),
            "454 Throttling failure: Maximum sending rate exceeded."
        );
        let e = Error::new(
            ErrorKind::DailyQuotaExceeded,
            "Daily message quota exceeded",
        );
        assert_eq!(
            smtp_refusal(&e),
            "454 Throttling failure: Daily message quota exceeded."
        );
    }
}
