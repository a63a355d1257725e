//! The authoritative listener for Sesame's DKIM zone (`dkim.cname_zone`).
//!
//! Easy DKIM's records are CNAMEs `<token>._domainkey.<domain>` →
//! `<token>.<zone>`. The operator delegates `<zone>` to this listener
//! (`dns.listen`), which answers `<token>.<zone> TXT "v=DKIM1; k=rsa; p=…"`
//! with the current key of the identity holding that token, so a new key
//! is published the moment it is made, as in SES.
//!
//! Over UDP and TCP. Answers are authoritative; names outside the zone are
//! refused; unknown tokens are NXDOMAIN with the zone's SOA. A UDP answer
//! larger than the client accepts is sent truncated, and the client asks
//! again over TCP.

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{NS, SOA, TXT};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use sesame_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

const TTL: u32 = 300;
/// A TCP client gets this long per message before it is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
const MAX_TCP_CONNECTIONS: usize = 128;

pub struct DkimZone {
    store: Arc<dyn Store>,
    /// The zone's apex, lower case, fully qualified.
    apex: Name,
    /// This listener's own name, for the SOA and NS records.
    ns: Name,
}

impl DkimZone {
    /// `zone` like `dkim.example.net`; `ns_host` the name the zone is
    /// delegated to (the host name).
    pub fn new(store: Arc<dyn Store>, zone: &str, ns_host: &str) -> Result<Self, String> {
        let fq = |s: &str| {
            Name::from_ascii(format!("{}.", s.trim_end_matches('.').to_ascii_lowercase()))
                .map_err(|e| format!("invalid DNS name {s}: {e}"))
        };
        Ok(Self {
            store,
            apex: fq(zone)?,
            ns: fq(ns_host)?,
        })
    }

    fn soa(&self) -> Record {
        let admin = Name::from_ascii(format!("hostmaster.{}", self.apex))
            .unwrap_or_else(|_| self.apex.clone());
        Record::from_rdata(
            self.apex.clone(),
            TTL,
            RData::SOA(SOA::new(self.ns.clone(), admin, 1, 3600, 600, 86400, 60)),
        )
    }

    /// The answer to one request.
    pub async fn answer(&self, request: &Message) -> Message {
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.metadata.authoritative = true;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            reply.edns = Some(edns);
        }
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            reply.metadata.response_code = ResponseCode::NotImp;
            return reply;
        }
        let [query] = request.queries.as_slice() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return reply;
        };
        reply.add_query(query.clone());
        let name = query.name().to_lowercase();
        let name = if name.is_fqdn() {
            name
        } else {
            let mut n = name;
            n.set_fqdn(true);
            n
        };
        if query.query_class() != DNSClass::IN || !self.apex.zone_of(&name) {
            reply.metadata.authoritative = false;
            reply.metadata.response_code = ResponseCode::Refused;
            return reply;
        }
        let qtype = query.query_type();
        if name == self.apex {
            match qtype {
                RecordType::SOA => {
                    reply.add_answer(self.soa());
                }
                RecordType::NS => {
                    reply.add_answer(Record::from_rdata(
                        self.apex.clone(),
                        TTL,
                        RData::NS(NS(self.ns.clone())),
                    ));
                }
                _ => {
                    reply.add_authority(self.soa());
                }
            }
            return reply;
        }
        let key = if name.num_labels() == self.apex.num_labels() + 1 {
            let token = String::from_utf8_lossy(name.iter().next().unwrap_or_default()).to_string();
            let valid = !token.is_empty()
                && token.len() <= 63
                && token.bytes().all(|b| b.is_ascii_alphanumeric());
            if valid {
                match self.store.dkim_key_by_token(&token).await {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::error!(error = %e, "DKIM zone: store lookup failed");
                        reply.metadata.response_code = ResponseCode::ServFail;
                        return reply;
                    }
                }
            } else {
                None
            }
        } else {
            None
        };
        match key {
            None => {
                reply.metadata.response_code = ResponseCode::NXDomain;
                reply.add_authority(self.soa());
            }
            Some(key) if qtype == RecordType::TXT || qtype == RecordType::ANY => {
                let value = sesame_model::verification::dkim_key_record(&key);
                // A TXT character-string holds at most 255 bytes.
                let parts = value
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                reply.add_answer(Record::from_rdata(name, TTL, RData::TXT(TXT::new(parts))));
            }
            Some(_) => {
                reply.add_authority(self.soa());
            }
        }
        reply
    }

    /// Serves `listen` over UDP and TCP until `stop` turns true. Owned by
    /// the server, which flips `stop` at shutdown.
    pub async fn serve(
        self: Arc<Self>,
        udp: UdpSocket,
        tcp: TcpListener,
        mut stop: watch::Receiver<bool>,
    ) {
        tracing::info!(zone = %self.apex, udp = ?udp.local_addr().ok(), "DKIM zone listener started");
        let mut conns = JoinSet::new();
        let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
        let mut buf = vec![0u8; 4096];
        loop {
            while conns.try_join_next().is_some() {}
            tokio::select! {
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, peer)) => self.udp_reply(&udp, &buf[..n], peer).await,
                    Err(e) => tracing::debug!(error = %e, "DKIM zone: UDP receive failed"),
                },
                r = tcp.accept() => match r {
                    Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let me = self.clone();
                            conns.spawn(async move {
                                me.tcp_session(stream).await;
                                drop(permit);
                            });
                        }
                        Err(_) => drop(stream),
                    },
                    Err(e) => tracing::debug!(error = %e, "DKIM zone: TCP accept failed"),
                },
                _ = stop.changed() => break,
            }
        }
        conns.abort_all();
        while conns.join_next().await.is_some() {}
        tracing::info!("DKIM zone listener stopped");
    }

    async fn udp_reply(&self, udp: &UdpSocket, packet: &[u8], peer: SocketAddr) {
        let Ok(request) = Message::from_vec(packet) else {
            return;
        };
        let limit = request
            .edns
            .as_ref()
            .map(|e| e.max_payload().clamp(512, 1232))
            .unwrap_or(512) as usize;
        let reply = self.answer(&request).await;
        let bytes = match reply.to_vec() {
            Ok(b) if b.len() <= limit => b,
            Ok(_) => match reply.truncate().to_vec() {
                Ok(b) => b,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let _ = udp.send_to(&bytes, peer).await;
    }

    async fn tcp_session(&self, mut stream: TcpStream) {
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut packet = vec![0u8; u16::from_be_bytes(len) as usize];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let Ok(request) = Message::from_vec(&packet) else {
                return;
            };
            let Ok(bytes) = self.answer(&request).await.to_vec() else {
                return;
            };
            let mut out = Vec::with_capacity(bytes.len() + 2);
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(&bytes);
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HickoryLookup;
    use sesame_core::DnsLookup;
    use sesame_model::verification::{Answer, RecordType as R};
    use sesame_model::{AccountId, DkimOrigin, DkimSigningKey, Region, Scope, VerificationStatus};
    use sesame_store::SqliteStore;

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_not_a_hang() {
        // Nothing listens on this port: the answer is an error, soon.
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let tuning = crate::Tuning {
            timeout: Duration::from_millis(500),
            attempts: 1,
            ..crate::Tuning::verification(4)
        };
        let dns =
            HickoryLookup::tuned(&[format!("127.0.0.1:{port}").parse().unwrap()], tuning).unwrap();
        let a = tokio::time::timeout(
            Duration::from_secs(30),
            dns.query("_amazonses.example.com", R::Txt),
        )
        .await
        .expect("bounded by the resolver's timeout");
        assert!(matches!(a, Answer::Error(_)), "{a:?}");
    }

    #[tokio::test]
    async fn answers_each_token_with_its_key_over_udp_and_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let scope = Scope::new(
            AccountId::parse("123456789012").unwrap(),
            Region::parse("us-east-1").unwrap(),
        );
        let long_key = "A".repeat(392);
        let mut identity = sesame_store::conformance::identity("example.com");
        let dkim = &mut identity.dkim;
        dkim.status = VerificationStatus::Pending;
        dkim.origin = DkimOrigin::AwsSes;
        dkim.tokens = vec!["tok0".into(), "tok1".into(), "tok2".into()];
        dkim.key = Some(DkimSigningKey {
            private_pkcs8_b64: "secret".into(),
            public_spki_b64: long_key.clone(),
            bits: 2048,
        });
        store.insert_identity(&scope, &identity, 10).await.unwrap();

        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let zone =
            Arc::new(DkimZone::new(store.clone(), "dkim.sesame.test", "ns.sesame.test").unwrap());
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(zone.serve(udp, tcp, stop));

        let dns = HickoryLookup::new(&[format!("127.0.0.1:{port}").parse().unwrap()], 4).unwrap();
        for t in ["tok0", "TOK2"] {
            let a = dns.query(&format!("{t}.dkim.sesame.test"), R::Txt).await;
            assert_eq!(
                a,
                Answer::Records(vec![format!("v=DKIM1; k=rsa; p={long_key}")]),
                "{t}"
            );
        }
        assert_eq!(
            dns.query("nope.dkim.sesame.test", R::Txt).await,
            Answer::NxDomain
        );
        assert_eq!(
            dns.query("tok1.dkim.sesame.test", R::Mx).await,
            Answer::NoData
        );
        let soa = dns.query("dkim.sesame.test", R::Soa).await;
        assert!(
            matches!(&soa, Answer::Records(r) if r[0].starts_with("ns.sesame.test hostmaster.dkim.sesame.test")),
            "{soa:?}"
        );
        assert!(matches!(
            dns.query("other.test", R::Txt).await,
            Answer::Error(_)
        ));
        // Garbage, truncated packets and odd questions get no panic and no
        // hang: the listener goes on answering.
        let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let garbage: [&[u8]; 4] = [b"", b"\x00", &[0xff; 12], &[0u8; 600]];
        for g in garbage {
            raw.send_to(g, ("127.0.0.1", port)).await.unwrap();
        }
        let mut q = Message::query();
        q.metadata.id = 4242;
        q.add_query(hickory_resolver::proto::op::Query::query(
            Name::from_ascii("tok0.dkim.sesame.test.").unwrap(),
            RecordType::TXT,
        ));
        q.queries[0].query_class = DNSClass::CH;
        raw.send_to(&q.to_vec().unwrap(), ("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        // The all-zero packet is a query with no question: FORMERR. Ours,
        // in class CH, is refused.
        let mut codes = vec![];
        while codes.len() < 2 {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), raw.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let reply = Message::from_vec(&buf[..n]).unwrap();
            codes.push((reply.metadata.id, reply.metadata.response_code));
        }
        codes.sort_by_key(|(id, _)| *id);
        assert_eq!(
            codes,
            vec![(0, ResponseCode::FormErr), (4242, ResponseCode::Refused)]
        );
        // Over TCP too: a bad message ends that session only.
        let mut bad = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        bad.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
        let mut one = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut one))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "the session is closed");
        assert_eq!(
            dns.query("tok1.dkim.sesame.test", R::Txt).await,
            Answer::Records(vec![format!("v=DKIM1; k=rsa; p={long_key}")])
        );
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
