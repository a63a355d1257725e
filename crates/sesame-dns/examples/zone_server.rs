//! A small authoritative DNS server for benchmarks: serves the records of a
//! zone file over UDP on loopback and prints how many queries it answered
//! when stopped (SIGTERM/SIGINT, or stdin closing).
//!
//! ```text
//! zone_server PORT ZONEFILE
//! ```
//! Each line of ZONEFILE is `NAME TYPE VALUE`, with TYPE one of TXT, CNAME,
//! MX or SOA (value `MNAME RNAME SERIAL`). A name with records but none of
//! the type asked answers NODATA; any other name NXDOMAIN.

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{CNAME, MX, SOA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Zone = HashMap<(String, RecordType), Vec<RData>>;

fn load(path: &str) -> (Zone, HashSet<String>) {
    let text = std::fs::read_to_string(path).expect("zone file");
    let mut zone = Zone::new();
    let mut names = HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.splitn(3, ' ');
        let (name, kind, value) = (
            it.next().unwrap().to_ascii_lowercase(),
            it.next().unwrap(),
            it.next().unwrap_or(""),
        );
        let fq = |s: &str| Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).unwrap();
        let (t, data) = match kind {
            "TXT" => (
                RecordType::TXT,
                RData::TXT(TXT::new(vec![value.to_owned()])),
            ),
            "CNAME" => (RecordType::CNAME, RData::CNAME(CNAME(fq(value)))),
            "MX" => (RecordType::MX, RData::MX(MX::new(10, fq(value)))),
            "SOA" => {
                let p: Vec<&str> = value.split(' ').collect();
                let soa = SOA::new(
                    fq(p[0]),
                    fq(p[1]),
                    p[2].parse().unwrap(),
                    3600,
                    600,
                    86400,
                    60,
                );
                (RecordType::SOA, RData::SOA(soa))
            }
            other => panic!("unknown record type {other}"),
        };
        names.insert(name.clone());
        zone.entry((name, t)).or_default().push(data);
    }
    (zone, names)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().expect("PORT");
    let (zone, names) = load(&args[2]);
    let socket = Arc::new(
        tokio::net::UdpSocket::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let answered = Arc::new(AtomicU64::new(0));
    let serve = {
        let socket = socket.clone();
        let answered = answered.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply = Message::response(req.metadata.id, req.metadata.op_code);
                reply.metadata.authoritative = true;
                reply.metadata.recursion_desired = req.metadata.recursion_desired;
                if let Some(q) = req.queries.first() {
                    reply.add_query(q.clone());
                    let name = q
                        .name()
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    match zone.get(&(name.clone(), q.query_type())) {
                        Some(rs) => {
                            for r in rs {
                                reply.add_answer(Record::from_rdata(
                                    q.name().clone(),
                                    60,
                                    r.clone(),
                                ));
                            }
                        }
                        None if names.contains(&name) => {}
                        None => reply.metadata.response_code = ResponseCode::NXDomain,
                    }
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    println!("listening on 127.0.0.1:{port}");
    tokio::select! {
        _ = serve => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            let mut stdin = tokio::io::stdin();
            let mut b = [0u8; 64];
            use tokio::io::AsyncReadExt;
            while let Ok(n) = stdin.read(&mut b).await { if n == 0 { break } }
        } => {}
    }
    println!("answered {}", answered.load(Ordering::Relaxed));
}
