//! `--delivery relay`: every message goes to one smarthost.

use crate::{COMMAND_TIMEOUT, Conn, Stream, connect_failed, deferred_all, error_text, transact};
use async_trait::async_trait;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use sesame_core::delivery::{Envelope, Transport};
use sesame_model::AttemptReport;
use std::fmt;
use std::sync::Mutex;

/// How the connection to the smarthost is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=none`: no TLS at all (loopback and test relays only).
    None,
}

/// A smarthost: `smtp[s]://[user:pass@]host[:port][?tls=none][&insecure=true]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    pub tls: RelayTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Accept any certificate (a relay with a self-signed one).
    pub insecure: bool,
}

impl fmt::Debug for RelayConfig {
    // The password never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("invalid relay URL ({why}); expected smtp[s]://[user:pass@]host[:port]")
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (mut tls, default_port) = match scheme {
            "smtp" => (RelayTls::StartTls, 587),
            "smtps" => (RelayTls::Implicit, 465),
            _ => return Err(bad("the scheme must be smtp or smtps")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("the credentials are not UTF-8"))
        };
        let (username, password) = match userinfo {
            Some(u) => {
                let (user, pass) = u
                    .split_once(':')
                    .ok_or_else(|| bad("user without password"))?;
                (Some(decode(user)?), Some(decode(pass)?))
            }
            None => (None, None),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [IPv6]:port
            let (h, p) = h.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h.to_owned(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
            None => default_port,
        };
        let mut insecure = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("tls", "none") if scheme == "smtp" => tls = RelayTls::None,
                ("tls", "starttls") if scheme == "smtp" => tls = RelayTls::StartTls,
                ("insecure", "true") => insecure = true,
                ("insecure", "false") => insecure = false,
                _ => return Err(bad(&format!("unknown option {pair}"))),
            }
        }
        Ok(Self {
            host,
            port,
            tls,
            username,
            password,
            insecure,
        })
    }
}

pub struct RelayTransport {
    config: RelayConfig,
    builder: SmtpClientBuilder<String>,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

impl RelayTransport {
    pub fn new(config: RelayConfig, helo: &str, max_idle: usize) -> Result<Self, String> {
        // EHLO after TLS and AUTH are done here, to keep the capabilities.
        let mut b = SmtpClientBuilder::new(config.host.clone(), config.port)?
            .implicit_tls(config.tls == RelayTls::Implicit)
            .helo_host(helo)
            .say_ehlo(false)
            .timeout(COMMAND_TIMEOUT);
        if config.insecure {
            b = b.allow_invalid_certs();
        }
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Self {
            config,
            builder: b,
            idle: Mutex::new(vec![]),
            max_idle,
        })
    }

    async fn connect(&self) -> Result<Conn, mail_send::Error> {
        match self.config.tls {
            RelayTls::None => {
                let c = self.builder.connect_plain().await?;
                // Small commands must not wait for ACKs (Nagle).
                c.stream.set_nodelay(true)?;
                let local = c.stream.local_addr().ok().map(|a| a.ip());
                self.greet(c, local).await
            }
            _ => {
                let c = self.builder.connect().await?;
                c.stream.get_ref().0.set_nodelay(true)?;
                let local = c.stream.get_ref().0.local_addr().ok().map(|a| a.ip());
                self.greet(c, local).await
            }
        }
    }

    /// EHLO, then AUTH when credentials are set.
    async fn greet<T: Stream + 'static>(
        &self,
        mut c: SmtpClient<T>,
        local: Option<std::net::IpAddr>,
    ) -> Result<Conn, mail_send::Error> {
        let ehlo = c.ehlo(&self.builder.local_host).await?;
        if let Some(credentials) = &self.builder.credentials {
            c.authenticate(credentials, &ehlo).await?;
        }
        Ok(Conn::new(
            c,
            &ehlo,
            self.config.tls != RelayTls::None,
            local,
        ))
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
    }
}

#[async_trait]
impl Transport for RelayTransport {
    async fn deliver(&self, env: &Envelope<'_>) -> AttemptReport {
        let remote = format!("{}:{}", self.config.host, self.config.port);
        // A reused connection may have been closed by the relay while idle:
        // on failure, try once more on a fresh one.
        let mut reused = self.take_idle();
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        let outcomes = connect_failed(env, &format!("relay {remote}"), &e);
                        return AttemptReport {
                            remote,
                            outcomes,
                            local: None,
                        };
                    }
                },
            };
            if env.require_tls && !conn.tls {
                // The configuration set's TlsPolicy REQUIRE: an unencrypted
                // hop never carries the message.
                let local = conn.local;
                self.put_idle(conn);
                return AttemptReport {
                    local,
                    outcomes: deferred_all(
                        env,
                        &format!(
                            "relay {remote}: TLS is required for this message (TlsPolicy REQUIRE) and the relay connection is not encrypted"
                        ),
                    ),
                    remote,
                };
            }
            match transact(&mut conn, env).await {
                Ok(outcomes) => {
                    let local = conn.local;
                    self.put_idle(conn);
                    return AttemptReport {
                        remote,
                        outcomes,
                        local,
                    };
                }
                Err(_) if was_reused => continue,
                Err(e) => {
                    return AttemptReport {
                        local: conn.local,
                        outcomes: deferred_all(env, &format!("relay {remote}: {}", error_text(&e))),
                        remote,
                    };
                }
            }
        }
    }

    fn mode(&self) -> &'static str {
        "relay"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_parse() {
        let c = RelayConfig::parse("smtp://user%40x:p%3Ass@relay.example.com:2525").unwrap();
        assert_eq!(c.host, "relay.example.com");
        assert_eq!(c.port, 2525);
        assert_eq!(c.tls, RelayTls::StartTls);
        assert_eq!(c.username.as_deref(), Some("user@x"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert!(
            !format!("{c:?}").contains("p:ss"),
            "the password is redacted"
        );
        let c = RelayConfig::parse("smtps://relay.example.com").unwrap();
        assert_eq!((c.port, c.tls), (465, RelayTls::Implicit));
        let c = RelayConfig::parse("smtp://127.0.0.1:25?tls=none").unwrap();
        assert_eq!(c.tls, RelayTls::None);
        let c = RelayConfig::parse("smtp://[::1]:25?insecure=true").unwrap();
        assert_eq!((c.host.as_str(), c.insecure), ("::1", true));
        for bad in [
            "http://x",
            "smtp://",
            "smtp://x:port",
            "smtp://user@x",
            "smtps://x?tls=none",
            "smtp://x?what=1",
        ] {
            assert!(RelayConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
