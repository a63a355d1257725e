//! Publishing records to the operator's authoritative DNS: one RFC 2136
//! dynamic update a change, signed with TSIG (RFC 8945), over TCP. The
//! messages are hickory's; the zone is the one the server says the domain
//! is in (its SOA).

use base64::Engine;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{CNAME, MX, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use sesame_core::identities::publish::RecordPublisher;
use sesame_model::identity::PublishedRecord;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The TTL of published records.
const TTL: u32 = 300;
/// How long one exchange with the server may take.
const EXCHANGE: Duration = Duration::from_secs(10);
/// Clock skew the server may allow (TSIG's fudge).
const FUDGE: u16 = 300;

/// The operator's primary server and the TSIG key it accepts updates
/// signed with.
#[derive(Clone)]
pub struct TsigPublisher {
    server: SocketAddr,
    signer: TSigner,
    key_name: String,
}

impl fmt::Debug for TsigPublisher {
    // The key's secret never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigPublisher")
            .field("server", &self.server)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl TsigPublisher {
    /// `algorithm` as BIND names it (hmac-sha256, hmac-sha384,
    /// hmac-sha512); `secret` the key's base64.
    pub fn new(
        server: SocketAddr,
        key_name: &str,
        algorithm: &str,
        secret: &str,
    ) -> Result<Self, String> {
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(format!(
                    "TSIG algorithm {other} is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512"
                ));
            }
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| "the TSIG secret is not base64".to_owned())?;
        let name = Name::from_ascii(key_name)
            .map_err(|e| format!("the TSIG key name {key_name} is not a DNS name: {e}"))?;
        let signer = TSigner::new(key, algorithm, name, FUDGE)
            .map_err(|e| format!("cannot use the TSIG key: {e}"))?;
        Ok(Self {
            server,
            signer,
            key_name: key_name.to_owned(),
        })
    }

    /// One message to the server and its answer, over TCP.
    async fn exchange(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let talk = async {
            let mut tcp = TcpStream::connect(self.server).await?;
            let len = u16::try_from(bytes.len())
                .map_err(|_| std::io::Error::other("the update is larger than 64 KiB"))?;
            tcp.write_all(&len.to_be_bytes()).await?;
            tcp.write_all(bytes).await?;
            let mut n = [0u8; 2];
            tcp.read_exact(&mut n).await?;
            let mut reply = vec![0u8; u16::from_be_bytes(n) as usize];
            tcp.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        match tokio::time::timeout(EXCHANGE, talk).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(format!("{}: {e}", self.server)),
            Err(_) => Err(format!("{} did not answer in time", self.server)),
        }
    }

    /// The zone `domain` is in, as the server answers its SOA: the domain
    /// itself at a zone's apex, else the zone named in the authority
    /// section.
    async fn zone_of(&self, domain: &Name) -> Result<Name, String> {
        let mut q = Message::query();
        q.metadata.recursion_desired = false;
        q.add_query(Query::query(domain.clone(), RecordType::SOA));
        let reply = self
            .exchange(&q.to_vec().map_err(|e| e.to_string())?)
            .await?;
        let reply = Message::from_vec(&reply).map_err(|e| e.to_string())?;
        let soa = reply
            .answers
            .iter()
            .chain(reply.authorities.iter())
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| r.name.clone());
        soa.ok_or_else(|| {
            format!(
                "{} is not authoritative for {domain} (no SOA in its answer, rcode {})",
                self.server, reply.metadata.response_code
            )
        })
    }

    /// One signed update of `records` (added, or deleted with class NONE).
    async fn update(
        &self,
        domain: &str,
        records: &[PublishedRecord],
        add: bool,
    ) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let origin = fqdn(domain)?;
        let zone = self.zone_of(&origin).await?;
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        m.metadata.message_type = MessageType::Query;
        m.metadata.recursion_desired = false;
        let mut z = Query::new();
        z.set_name(zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        m.queries.push(z);
        for r in records {
            let mut rec = record(r)?;
            if !zone.zone_of(&rec.name) {
                return Err(format!("{} is outside the zone {zone}", rec.name));
            }
            if !add {
                rec.dns_class = DNSClass::NONE;
                rec.ttl = 0;
            }
            m.authorities.push(rec);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut verifier = m
            .finalize(&self.signer, now)
            .map_err(|e| format!("cannot sign the update: {e}"))?;
        let reply = self
            .exchange(&m.to_vec().map_err(|e| e.to_string())?)
            .await?;
        let parsed = Message::from_vec(&reply).map_err(|e| e.to_string())?;
        let rcode = parsed.metadata.response_code;
        if rcode != ResponseCode::NoError {
            return Err(format!(
                "rcode {} ({rcode}){}",
                mnemonic(rcode),
                match rcode {
                    ResponseCode::NotAuth =>
                        " (the server did not accept the TSIG key or signature)",
                    ResponseCode::Refused =>
                        " (the server does not allow this key to update the zone)",
                    _ => "",
                }
            ));
        }
        if let Some(v) = verifier.as_mut() {
            v.verify(&reply)
                .map_err(|e| format!("the server's answer is not signed with the key: {e}"))?;
        }
        Ok(())
    }
}

/// RFC 2136's name for an update's rcode.
fn mnemonic(rcode: ResponseCode) -> &'static str {
    match u16::from(rcode) {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "other",
    }
}

fn fqdn(name: &str) -> Result<Name, String> {
    let with_dot = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&with_dot).map_err(|e| format!("{name} is not a DNS name: {e}"))
}

/// A record as hickory's: TXT values in strings of at most 255 bytes.
fn record(r: &PublishedRecord) -> Result<Record, String> {
    let name = fqdn(&r.name)?;
    let data = match r.kind.as_str() {
        "TXT" => {
            let v = r.value.as_bytes();
            let parts = v
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            RData::TXT(TXT::new(parts))
        }
        "CNAME" => RData::CNAME(CNAME(fqdn(&r.value)?)),
        "MX" => {
            let (pref, host) = r
                .value
                .split_once(' ')
                .ok_or_else(|| format!("MX value {} has no preference", r.value))?;
            let pref: u16 = pref
                .parse()
                .map_err(|_| format!("MX preference {pref} is not a number"))?;
            RData::MX(MX::new(pref, fqdn(host)?))
        }
        other => return Err(format!("cannot publish a {other} record")),
    };
    Ok(Record::from_rdata(name, TTL, data))
}

#[async_trait::async_trait]
impl RecordPublisher for TsigPublisher {
    async fn add(&self, domain: &str, records: &[PublishedRecord]) -> Result<(), String> {
        self.update(domain, records, true).await
    }

    async fn remove(&self, domain: &str, records: &[PublishedRecord]) -> Result<(), String> {
        self.update(domain, records, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_hickory_records() {
        let long = "v=DKIM1; k=rsa; p=".to_owned() + &"A".repeat(400);
        let txt = record(&PublishedRecord {
            name: "sel._domainkey.example.com".into(),
            kind: "TXT".into(),
            value: long.clone(),
        })
        .unwrap();
        let RData::TXT(t) = &txt.data else {
            panic!("not TXT")
        };
        assert_eq!(t.txt_data.len(), 2, "split at 255 bytes");
        assert_eq!(t.txt_data.concat(), long.as_bytes());
        let mx = record(&PublishedRecord {
            name: "bounce.example.com".into(),
            kind: "MX".into(),
            value: "10 feedback.sesame.test".into(),
        })
        .unwrap();
        assert_eq!(mx.name.to_ascii(), "bounce.example.com.");
        assert!(matches!(&mx.data, RData::MX(m) if m.preference == 10));
        assert!(
            record(&PublishedRecord {
                name: "x.example.com".into(),
                kind: "A".into(),
                value: "1.2.3.4".into(),
            })
            .is_err()
        );
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        let p = TsigPublisher::new(
            "127.0.0.1:53".parse().unwrap(),
            "sesame-key",
            "hmac-sha256",
            "c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
        )
        .unwrap();
        assert!(!format!("{p:?}").contains("c2VjcmV0"));
        assert!(
            TsigPublisher::new("127.0.0.1:53".parse().unwrap(), "k", "hmac-md5", "aGk=").is_err()
        );
        assert!(
            TsigPublisher::new("127.0.0.1:53".parse().unwrap(), "k", "hmac-sha256", "@@").is_err()
        );
    }
}
