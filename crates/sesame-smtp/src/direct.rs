//! `--delivery direct`: each domain's mail goes to its own MX hosts.

use crate::{COMMAND_TIMEOUT, Conn, connect_failed, deferred_all, error_text, permanent, transact};
use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use mail_send::SmtpClient;
use sesame_core::delivery::{Envelope, Transport};
use sesame_model::{AttemptReport, RecipientOutcome};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct DirectSettings {
    /// The port MX hosts listen on: 25, except in tests.
    pub port: u16,
    /// DNS servers to ask; the system's resolver when empty.
    pub dns_servers: Vec<SocketAddr>,
    /// Connections at once to one recipient domain.
    pub per_domain: usize,
    /// Idle connections kept per MX host.
    pub max_idle: usize,
    /// Idle connections kept in all, whatever the number of hosts.
    pub max_idle_total: usize,
    /// How long an idle connection is kept for reuse.
    pub idle_for: Duration,
    pub helo: String,
    pub connect_timeout: Duration,
    /// How long a domain none of whose hosts took a connection gets no
    /// more tries (see [`DirectTransport`]'s `unreachable`).
    pub unreachable_for: Duration,
    /// Whether address literals and hosts at loopback, private, link-local
    /// and other reserved addresses may be delivered to. Off, as an MTA
    /// that is not a tool for reaching inside networks keeps it; tests and
    /// closed networks turn it on.
    pub allow_private: bool,
}

impl Default for DirectSettings {
    fn default() -> Self {
        Self {
            port: 25,
            dns_servers: vec![],
            per_domain: 8,
            max_idle: 4,
            max_idle_total: 256,
            idle_for: Duration::from_secs(30),
            helo: "localhost".into(),
            connect_timeout: Duration::from_secs(30),
            unreachable_for: Duration::from_secs(60),
            allow_private: false,
        }
    }
}

pub struct DirectTransport {
    settings: DirectSettings,
    resolver: TokioResolver,
    /// Opportunistic TLS: certificates are not checked (RFC 7435), as
    /// MTAs do.
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<IdlePool<Conn>>,
    /// Each recipient domain's state, while an attempt holds it or it is
    /// marked unreachable.
    domains: Mutex<HashMap<String, Arc<Domain>>>,
}

/// What direct delivery keeps for one recipient domain.
struct Domain {
    /// Its connections at once (`per_domain`).
    slots: Semaphore,
    /// When none of its hosts last took a connection (greeting and EHLO),
    /// and why: until `unreachable_for` has passed, its other mail is
    /// deferred without connecting (as Postfix marks a destination dead),
    /// instead of each delivery waiting out its own connection timeouts
    /// while it holds one of the engine's attempts.
    failed: Mutex<Option<(Instant, String)>>,
}

impl Domain {
    /// Records that none of its hosts took a connection now, and why; or,
    /// with `None`, that one took the message.
    fn mark(&self, failed: Option<String>) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) =
            failed.map(|why| (Instant::now(), why));
    }
}

/// Where a domain's mail goes, or why it cannot go anywhere.
enum Route {
    Hosts(Vec<String>),
    Refused(RecipientOutcome),
}

impl DirectTransport {
    pub fn new(settings: DirectSettings) -> Result<Self, String> {
        let resolver = sesame_dns::resolver(&settings.dns_servers, sesame_dns::Tuning::delivery())?;
        let idle = IdlePool::new(
            settings.max_idle,
            settings.max_idle_total,
            settings.idle_for,
        );
        Ok(Self {
            tls: mail_send::smtp::tls::build_tls_connector(true)?,
            settings,
            resolver,
            idle: Mutex::new(idle),
            domains: Mutex::new(HashMap::new()),
        })
    }

    /// `domain`'s state. Domains no attempt holds and not marked
    /// unreachable are forgotten once there are many.
    fn domain(&self, domain: &str) -> Arc<Domain> {
        let mut all = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() > 100_000 {
            let keep = self.settings.unreachable_for;
            all.retain(|_, d| {
                let failed = d.failed.lock().unwrap_or_else(|p| p.into_inner());
                Arc::strong_count(d) > 1
                    || failed.as_ref().is_some_and(|(at, _)| at.elapsed() < keep)
            });
        }
        all.entry(domain.to_owned())
            .or_insert_with(|| {
                Arc::new(Domain {
                    slots: Semaphore::new(self.settings.per_domain.max(1)),
                    failed: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Why `domain` is not tried now, if none of its hosts took a
    /// connection lately.
    fn unreachable(&self, d: &Domain, domain: &str) -> Option<String> {
        let failed = d.failed.lock().unwrap_or_else(|p| p.into_inner());
        let (at, why) = failed.as_ref()?;
        let ago = at.elapsed();
        (ago < self.settings.unreachable_for).then(|| {
            format!(
                "not tried: no host of {domain} took a connection {}s ago ({why}); \
                 none is tried again until {}s after that",
                ago.as_secs(),
                self.settings.unreachable_for.as_secs()
            )
        })
    }

    /// MX hosts by preference; the domain itself when it has no MX.
    async fn route(&self, domain: &str) -> Route {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mx: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if mx.len() == 1 && (mx[0].1 == "." || mx[0].1.is_empty()) {
                    return Route::Refused(crate::failed(
                        "5.1.10",
                        format!(
                            "smtp; 556 5.1.10 Recipient address rejected: {domain} has a null MX"
                        ),
                    ));
                }
                if mx.is_empty() {
                    return Route::Hosts(vec![fqdn]);
                }
                Route::Hosts(by_preference(mx))
            }
            Err(e) if e.is_nx_domain() => Route::Refused(crate::failed(
                "5.1.2",
                format!(
                    "smtp; 550 5.1.2 Host or domain name not found. Name service error for name={domain} type=MX: Host not found"
                ),
            )),
            Err(e) if e.is_no_records_found() => Route::Hosts(vec![fqdn]),
            Err(e) => Route::Refused(RecipientOutcome::Deferred {
                reason: format!("DNS lookup of MX {domain} failed: {e}"),
            }),
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.trim_end_matches('.').parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(host).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) => Err(format!("DNS lookup of {host} failed: {e}")),
        }
    }

    /// Connects, reads the greeting, says EHLO and upgrades to TLS when the
    /// host offers STARTTLS. If the TLS handshake fails, tries once more in
    /// the clear, as opportunistic TLS allows.
    async fn connect(
        &self,
        ip: IpAddr,
        host: &str,
        require_tls: bool,
    ) -> Result<Conn, mail_send::Error> {
        match self.connect_once(ip, host, true).await {
            // TlsPolicy REQUIRE: no falling back to the clear.
            Err(e) if require_tls => Err(e),
            Err(mail_send::Error::Tls(e)) => {
                tracing::info!(%host, error = %e, "STARTTLS failed; retrying without TLS");
                self.connect_once(ip, host, false).await
            }
            other => other,
        }
    }

    async fn connect_once(
        &self,
        ip: IpAddr,
        host: &str,
        tls: bool,
    ) -> Result<Conn, mail_send::Error> {
        let addr = SocketAddr::new(ip, self.settings.port);
        let stream = tokio::time::timeout(self.settings.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| mail_send::Error::Timeout)??;
        // Small commands must not wait for ACKs (Nagle).
        stream.set_nodelay(true)?;
        let local = stream.local_addr().ok().map(|a| a.ip());
        let mut c = SmtpClient {
            stream,
            timeout: COMMAND_TIMEOUT,
        };
        let greeting = c.read().await?;
        if greeting.code != 220 {
            return Err(mail_send::Error::UnexpectedReply(greeting));
        }
        let ehlo = c.ehlo(&self.settings.helo).await?;
        if tls && ehlo.has_capability(smtp_proto::EXT_START_TLS) {
            let name = host.trim_end_matches('.');
            let mut t = c.start_tls(&self.tls, name).await?;
            let ehlo = t.ehlo(&self.settings.helo).await?;
            return Ok(Conn::new(t, &ehlo, true, local));
        }
        Ok(Conn::new(c, &ehlo, false, local))
    }

    fn take_idle(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.take(key, Instant::now())
    }

    fn put_idle(&self, key: String, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.put(key, conn, Instant::now());
    }

    /// One host: reuse an idle connection or open one to any of its
    /// addresses, then run the transaction.
    async fn try_host(
        &self,
        host: &str,
        env: &Envelope<'_>,
    ) -> Result<(Vec<(String, RecipientOutcome)>, Option<IpAddr>), HostFailed> {
        let key = format!("{}:{}", host.trim_end_matches('.'), self.settings.port);
        if let Some(mut conn) = self.take_idle(&key).filter(|c| c.tls || !env.require_tls)
            && let Ok(out) = transact(&mut conn, env).await
        {
            let local = conn.local;
            self.put_idle(key, conn);
            return Ok((out, local));
        }
        let (mut why, mut connected) = (format!("{host} has no address"), false);
        let mut ips = self
            .addresses(host)
            .await
            .map_err(|why| HostFailed { why, connected })?;
        if !self.settings.allow_private {
            let (public, reserved): (Vec<IpAddr>, Vec<IpAddr>) =
                ips.into_iter().partition(|ip| is_public(*ip));
            if public.is_empty() && !reserved.is_empty() {
                let shown: Vec<String> = reserved.iter().map(IpAddr::to_string).collect();
                tracing::warn!(%host, addresses = %shown.join(", "), "not delivered: the MX host resolves only to reserved addresses");
                let o = crate::failed(
                    "5.4.4",
                    format!(
                        "smtp; 550 5.4.4 {} resolves only to reserved addresses ({}): direct delivery does not connect to loopback, private, link-local or other reserved addresses (set --delivery-allow-private to allow it)",
                        host.trim_end_matches('.'),
                        shown.join(", ")
                    ),
                );
                return Ok((sesame_model::delivery::for_all(env.recipients, &o), None));
            }
            ips = public;
        }
        for ip in ips {
            let e = match self.connect(ip, host, env.require_tls).await {
                Ok(conn) if env.require_tls && !conn.tls => {
                    connected = true;
                    why = format!(
                        "{host} [{ip}]: TLS is required for this message (TlsPolicy REQUIRE) and the host does not offer STARTTLS"
                    );
                    continue;
                }
                Ok(mut conn) => match transact(&mut conn, env).await {
                    Ok(out) => {
                        let local = conn.local;
                        self.put_idle(key, conn);
                        return Ok((out, local));
                    }
                    Err(e) => {
                        connected = true;
                        e
                    }
                },
                Err(e) if permanent(&e).is_some() => {
                    return Ok((connect_failed(env, host, &e), None));
                }
                Err(e) => e,
            };
            why = format!("{host} [{ip}]: {}", error_text(&e));
        }
        Err(HostFailed { why, connected })
    }
}

/// Why a host did not take the message, and whether it took a connection
/// (greeting and EHLO) before it failed.
struct HostFailed {
    why: String,
    connected: bool,
}

/// Idle connections by host, for reuse: at most `per_host` a host and
/// `total` in all, each kept at most `ttl`, so that mail to many hosts does
/// not keep a socket open to each of them for ever (and run out of file
/// descriptors). A connection that is not kept is dropped, which closes it.
struct IdlePool<T> {
    by_host: HashMap<String, Vec<(Instant, T)>>,
    count: usize,
    per_host: usize,
    total: usize,
    ttl: Duration,
    swept: Option<Instant>,
}

impl<T> IdlePool<T> {
    fn new(per_host: usize, total: usize, ttl: Duration) -> Self {
        Self {
            by_host: HashMap::new(),
            count: 0,
            per_host,
            total,
            ttl,
            swept: None,
        }
    }

    /// The connection to `host` parked last, if it is still fresh (then so
    /// are the others; else none is, and they go).
    fn take(&mut self, host: &str, now: Instant) -> Option<T> {
        self.sweep(now);
        let parked = self.by_host.get_mut(host)?;
        let (at, conn) = parked.pop()?;
        self.count -= 1;
        let fresh = now.saturating_duration_since(at) < self.ttl;
        if !fresh {
            self.count -= parked.len();
            parked.clear();
        }
        if parked.is_empty() {
            self.by_host.remove(host);
        }
        fresh.then_some(conn)
    }

    /// Parks `conn` for `host`, if there is room.
    fn put(&mut self, host: String, conn: T, now: Instant) {
        self.sweep(now);
        if self.count >= self.total {
            return;
        }
        let parked = self.by_host.entry(host).or_default();
        if parked.len() < self.per_host {
            parked.push((now, conn));
            self.count += 1;
        }
    }

    /// Drops what was idle longer than `ttl`, at most once a second.
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let ttl = self.ttl;
        self.by_host.retain(|_, parked| {
            parked.retain(|(at, _)| now.saturating_duration_since(*at) < ttl);
            !parked.is_empty()
        });
        self.count = self.by_host.values().map(Vec::len).sum();
    }
}

/// MX hosts in the order to try them: by preference, and hosts of equal
/// preference in random order, so that they share the load (RFC 5321 5.1).
fn by_preference(mut mx: Vec<(u16, String)>) -> Vec<String> {
    mx.sort_by_cached_key(|(p, _)| (*p, u64::from_le_bytes(sesame_core::random::bytes::<8>())));
    mx.into_iter().map(|(_, h)| h).collect()
}

#[async_trait]
impl Transport for DirectTransport {
    async fn deliver(&self, env: &Envelope<'_>) -> AttemptReport {
        let defer = |why: String| AttemptReport {
            remote: env.domain.to_owned(),
            outcomes: deferred_all(env, &why),
            local: None,
        };
        let domain = self.domain(env.domain);
        if let Some(why) = self.unreachable(&domain, env.domain) {
            return defer(why);
        }
        let Ok(_permit) = domain.slots.acquire().await else {
            return defer("the transport is closing".into());
        };
        // Another attempt may have found the domain unreachable meanwhile.
        if let Some(why) = self.unreachable(&domain, env.domain) {
            return defer(why);
        }
        let hosts = match literal(env.domain) {
            Some(_) if !self.settings.allow_private => {
                let o = crate::failed(
                    "5.1.2",
                    format!(
                        "smtp; 550 5.1.2 {} is an address literal: direct delivery does not connect to addresses given in mail (set --delivery-allow-private to allow it)",
                        env.domain
                    ),
                );
                return AttemptReport::all(env.domain, env.recipients, o);
            }
            Some(ip) => vec![ip.to_string()],
            None => match self.route(env.domain).await {
                Route::Hosts(h) => h,
                Route::Refused(o) => {
                    return AttemptReport::all(env.domain, env.recipients, o);
                }
            },
        };
        let (mut last, mut connected) = (String::new(), false);
        for host in &hosts {
            match self.try_host(host, env).await {
                Ok((outcomes, local)) => {
                    domain.mark(None);
                    return AttemptReport {
                        remote: host.trim_end_matches('.').to_owned(),
                        outcomes,
                        local,
                    };
                }
                Err(e) => (last, connected) = (e.why, connected || e.connected),
            }
        }
        // Only a domain none of whose hosts took a connection is left
        // alone for a while; one whose transaction failed on the way may
        // take the next message.
        if !connected {
            domain.mark(Some(last.clone()));
        }
        AttemptReport {
            local: None,
            remote: hosts.first().cloned().unwrap_or_default(),
            outcomes: deferred_all(
                env,
                &format!("no MX host of {} took the message: {last}", env.domain),
            ),
        }
    }

    fn mode(&self) -> &'static str {
        "direct"
    }
}

/// The address in a domain that is an address literal (`[192.0.2.1]`,
/// `[IPv6:2001:db8::1]`).
fn literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// shared (CGNAT), link-local, documentation, benchmarking, multicast,
/// reserved or unspecified (RFC 6890's special-purpose registries).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b)
                || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
                || (s[0] == 0x2001 && s[1] < 0x0200)
                || (s[0] == 0x2002))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses_and_literals() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "192.0.3.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(literal("[127.0.0.1]"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("[IPv6:::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("example.com"), None);
        assert_eq!(literal("[not-an-ip]"), None);
    }

    /// The idle pool keeps at most so many a host and in all, hands back
    /// the connection parked last, and lets none be reused, or stay, after
    /// its time.
    #[test]
    fn idle_connections_are_bounded_and_expire() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut pool = IdlePool::new(2, 3, 30 * s);
        for n in 0..3 {
            pool.put("a".into(), n, t0);
        }
        assert_eq!(pool.count, 2, "two a host");
        pool.put("b".into(), 10, t0);
        pool.put("c".into(), 20, t0);
        assert_eq!(pool.count, 3, "three in all");
        assert_eq!(pool.take("c", t0), None, "c found no room");
        assert_eq!(pool.take("a", t0 + s), Some(1), "the last parked first");
        assert_eq!(pool.take("a", t0 + s), Some(0));
        assert_eq!(pool.take("a", t0 + s), None);
        pool.put("a".into(), 2, t0 + 10 * s);
        // b's connection is past its time: not handed back, and gone.
        assert_eq!(pool.take("b", t0 + 31 * s), None);
        assert_eq!(pool.count, 1);
        // A sweep drops a's too, once it is past its time, host and all.
        pool.put("d".into(), 30, t0 + 45 * s);
        assert_eq!(pool.count, 1);
        assert!(!pool.by_host.contains_key("a") && !pool.by_host.contains_key("b"));
        assert_eq!(pool.take("d", t0 + 46 * s), Some(30));
        // Between sweeps (a second apart), a connection past its time is
        // not handed back either.
        let ms = Duration::from_millis(1);
        pool.put("e".into(), 40, t0 + 50 * s);
        pool.put("f".into(), 50, t0 + 80 * s - 100 * ms);
        assert_eq!(pool.take("e", t0 + 80 * s + 200 * ms), None);
        assert_eq!(pool.count, 1);
    }

    /// Lower preference first, always; hosts of equal preference each come
    /// first some of the time (over 200 orderings, one of three hosts
    /// never first has a chance of (2/3)^200).
    #[test]
    fn mx_hosts_go_by_preference_and_equals_share_the_load() {
        let mx = || {
            vec![
                (20, "c.mx.".to_owned()),
                (10, "a1.mx.".to_owned()),
                (30, "d.mx.".to_owned()),
                (10, "a2.mx.".to_owned()),
                (10, "a3.mx.".to_owned()),
            ]
        };
        let mut first = std::collections::HashSet::new();
        for _ in 0..200 {
            let order = by_preference(mx());
            assert_eq!(&order[3..], ["c.mx.", "d.mx."]);
            let mut equals = order[..3].to_vec();
            equals.sort();
            assert_eq!(equals, ["a1.mx.", "a2.mx.", "a3.mx."]);
            first.insert(order[0].clone());
        }
        assert_eq!(first.len(), 3, "{first:?}");
    }
}
