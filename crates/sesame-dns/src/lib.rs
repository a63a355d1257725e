//! Sesame's DNS.
//!
//! # Layout
//! - this file: [`resolver`], the hickory resolver built from `--dns-server`
//!   (or the system's configuration), and [`HickoryLookup`], the verifier's
//!   [`DnsLookup`] on top of it, uncached so that every check sees the zone
//!   as it is now.
//! - [`zone`]: the authoritative listener for Sesame's DKIM zone
//!   (`dkim.cname_zone`), which answers each Easy DKIM token's public key.

pub mod update;
pub mod zone;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType as HRecordType};
use sesame_core::DnsLookup;
use sesame_model::verification::{Answer, RecordType};
use std::net::SocketAddr;
use std::time::Duration;

/// How a resolver is tuned for its use.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub timeout: Duration,
    pub attempts: usize,
    /// Keep answers for their TTL (delivery) or ask every time (verification).
    pub cache: bool,
    /// Requests at once on one connection.
    pub max_active: usize,
}

impl Tuning {
    pub fn delivery() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: true,
            max_active: 32,
        }
    }
    pub fn verification(max_in_flight: usize) -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: false,
            max_active: max_in_flight.max(1),
        }
    }
}

/// A resolver asking `servers` (UDP, then TCP when truncated), or the
/// system's configured servers when the list is empty.
pub fn resolver(servers: &[SocketAddr], tuning: Tuning) -> Result<TokioResolver, String> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| format!("system DNS configuration: {e}"))?
    } else {
        let servers = servers
            .iter()
            .map(|sa| {
                let mut ns = NameServerConfig::udp_and_tcp(sa.ip());
                for c in &mut ns.connections {
                    c.port = sa.port();
                }
                ns
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let o = builder.options_mut();
    o.timeout = tuning.timeout;
    o.attempts = tuning.attempts;
    o.max_active_requests = tuning.max_active;
    if !tuning.cache {
        o.cache_size = 0;
        o.positive_max_ttl = Some(Duration::ZERO);
        o.negative_max_ttl = Some(Duration::ZERO);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The verifier's DNS: one question, its answer in text form.
pub struct HickoryLookup {
    resolver: TokioResolver,
}

impl HickoryLookup {
    pub fn new(servers: &[SocketAddr], max_in_flight: usize) -> Result<Self, String> {
        Self::tuned(servers, Tuning::verification(max_in_flight))
    }

    pub fn tuned(servers: &[SocketAddr], tuning: Tuning) -> Result<Self, String> {
        Ok(Self {
            resolver: resolver(servers, tuning)?,
        })
    }
}

fn host(name: &hickory_resolver::proto::rr::Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// A record's value as `sesame_model::verification::Answer` carries it.
fn text(data: &RData) -> Option<String> {
    Some(match data {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<String>(),
        RData::CNAME(c) => host(&c.0),
        RData::MX(m) => host(&m.exchange),
        RData::SOA(s) => format!("{} {} {}", host(&s.mname), host(&s.rname), s.serial),
        _ => return None,
    })
}

#[async_trait::async_trait]
impl DnsLookup for HickoryLookup {
    async fn query(&self, name: &str, kind: RecordType) -> Answer {
        let rtype = match kind {
            RecordType::Txt => HRecordType::TXT,
            RecordType::Cname => HRecordType::CNAME,
            RecordType::Mx => HRecordType::MX,
            RecordType::Soa => HRecordType::SOA,
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .filter_map(|r| text(&r.data))
                    .collect();
                if records.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(records)
                }
            }
            Err(e) if e.is_nx_domain() => Answer::NxDomain,
            Err(e) if e.is_no_records_found() => Answer::NoData,
            Err(e) => Answer::Error(e.to_string()),
        }
    }
}
