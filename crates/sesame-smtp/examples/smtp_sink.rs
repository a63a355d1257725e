//! An SMTP sink on loopback, for the delivery benchmark and the tests:
//! accepts every message and prints the running count of messages
//! received once a second.
//!
//! It offers what Postfix offers a client: PIPELINING (RFC 2920) and
//! CHUNKING (RFC 3030), and it answers all the commands one read brought
//! in one write. Commands and message data are read with Stalwart's
//! `smtp-proto` receivers (the ones its SMTP server uses), so DATA is
//! un-dot-stuffed and BDAT chunks are taken by their length.
//!
//! Usage: cargo run --release -p sesame-smtp --example smtp_sink --
//!        PORT [--store DIR] [--no-chunking]
//!   --store DIR    also writes message N to DIR/N.eml and its envelope to
//!                  DIR/N.env: lines `via DATA|BDAT`, `conn K` (the Kth
//!                  connection accepted), `from ADDR`, then `to ADDR` each
//!   --no-chunking  offers PIPELINING without CHUNKING
//!
//! A recipient whose local part starts with `refuse550` is refused with
//! `550 5.1.1`, and with `refuse451` with `451 4.3.0`, so that tests can
//! see refusals over either path.

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, RequestReceiver,
};
use smtp_proto::{Error, Request};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The largest message taken (as Postfix's default `message_size_limit`).
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

struct Sink {
    count: AtomicU64,
    connections: AtomicU64,
    store: Option<PathBuf>,
    chunking: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 2525;
    let mut store = None;
    let mut chunking = true;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--store" => store = args.next().map(PathBuf::from),
            "--no-chunking" => chunking = false,
            p => port = p.parse().expect("PORT [--store DIR] [--no-chunking]"),
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let sink = Arc::new(Sink {
        count: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        store,
        chunking,
    });
    let s = sink.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            println!("{}", s.count.load(Ordering::Relaxed));
        }
    });
    loop {
        let (sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        let sink = sink.clone();
        let conn = sink.connections.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(async move {
            let _ = session(sock, conn, &sink).await;
        });
    }
}

/// Where a connection is: reading commands, or a message's data.
enum State {
    Command,
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// A BDAT chunk outside a transaction (or too large): read and dropped,
    /// then answered with the reply kept here.
    Discard(DummyDataReceiver, &'static [u8]),
}

/// The transaction in progress.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
    body: Vec<u8>,
}

async fn session(mut sock: tokio::net::TcpStream, conn: u64, sink: &Sink) -> std::io::Result<()> {
    sock.write_all(b"220 sink ESMTP\r\n").await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut requests = RequestReceiver::default();
    let mut state = State::Command;
    let mut tx = Transaction::default();
    let mut out: Vec<u8> = Vec::with_capacity(512);
    loop {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut bytes = buf[..n].iter();
        loop {
            match &mut state {
                State::Command => match requests.ingest(&mut bytes) {
                    Ok(Request::Quit) => {
                        out.extend_from_slice(b"221 bye\r\n");
                        sock.write_all(&out).await?;
                        return Ok(());
                    }
                    Ok(request) => {
                        if let Some(next) = command(request, &mut tx, &mut out, sink) {
                            state = next;
                        }
                    }
                    Err(Error::NeedsMoreData { .. }) => break,
                    Err(Error::UnknownCommand) => out.extend_from_slice(b"502 5.5.1 unknown\r\n"),
                    Err(_) => out.extend_from_slice(b"501 5.5.4 syntax error\r\n"),
                },
                State::Data(data) => {
                    if !data.ingest(&mut bytes, &mut tx.body) {
                        break;
                    }
                    received(&mut tx, conn, "DATA", &mut out, sink);
                    state = State::Command;
                }
                State::Bdat(chunk) => {
                    if !chunk.ingest(&mut bytes, &mut tx.body) {
                        break;
                    }
                    if chunk.is_last {
                        received(&mut tx, conn, "BDAT", &mut out, sink);
                    } else {
                        out.extend_from_slice(b"250 2.0.0 chunk taken\r\n");
                    }
                    state = State::Command;
                }
                State::Discard(chunk, reply) => {
                    if !chunk.ingest(&mut bytes) {
                        break;
                    }
                    out.extend_from_slice(reply);
                    state = State::Command;
                }
            }
        }
        // Everything this read brought is answered in one write.
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
    }
}

impl Transaction {
    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
        self.body.clear();
    }
}

/// Answers one command; returns the state that reads what follows it.
fn command(
    request: Request<std::borrow::Cow<'_, str>>,
    tx: &mut Transaction,
    out: &mut Vec<u8>,
    sink: &Sink,
) -> Option<State> {
    match request {
        Request::Ehlo { .. } => {
            out.extend_from_slice(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n");
            if sink.chunking {
                out.extend_from_slice(b"250-CHUNKING\r\n");
            }
            out.extend_from_slice(b"250 SIZE 10485760\r\n");
        }
        Request::Helo { .. } => out.extend_from_slice(b"250 sink\r\n"),
        Request::Mail { from } if tx.from.is_none() => {
            tx.from = Some(from.address.into_owned());
            out.extend_from_slice(b"250 2.1.0 Ok\r\n");
        }
        Request::Rcpt { to } if tx.from.is_some() => {
            if to.address.starts_with("refuse550") {
                out.extend_from_slice(b"550 5.1.1 no such user here\r\n");
            } else if to.address.starts_with("refuse451") {
                out.extend_from_slice(b"451 4.3.0 try again later\r\n");
            } else {
                tx.to.push(to.address.into_owned());
                out.extend_from_slice(b"250 2.1.5 Ok\r\n");
            }
        }
        Request::Mail { .. } | Request::Rcpt { .. } => {
            out.extend_from_slice(b"503 5.5.1 bad sequence of commands\r\n")
        }
        Request::Data if !tx.to.is_empty() => {
            tx.body.clear();
            out.extend_from_slice(b"354 go ahead\r\n");
            return Some(State::Data(DataReceiver::new()));
        }
        Request::Data => out.extend_from_slice(b"554 5.5.1 no valid recipients\r\n"),
        Request::Bdat {
            chunk_size,
            is_last,
        } => {
            if tx.to.is_empty() {
                return Some(State::Discard(
                    DummyDataReceiver::new_bdat(chunk_size),
                    b"503 5.5.1 no valid recipients\r\n",
                ));
            }
            if tx.body.len() + chunk_size > MAX_MESSAGE {
                tx.reset();
                return Some(State::Discard(
                    DummyDataReceiver::new_bdat(chunk_size),
                    b"552 5.3.4 message too big\r\n",
                ));
            }
            return Some(State::Bdat(BdatReceiver::new(chunk_size, is_last)));
        }
        Request::Rset => {
            tx.reset();
            out.extend_from_slice(b"250 2.0.0 Ok\r\n");
        }
        Request::Noop { .. } => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
        _ => out.extend_from_slice(b"502 5.5.1 not implemented\r\n"),
    }
    None
}

/// A whole message arrived: counts it, stores it when asked, and ends the
/// transaction.
fn received(tx: &mut Transaction, conn: u64, via: &str, out: &mut Vec<u8>, sink: &Sink) {
    let n = sink.count.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(dir) = &sink.store {
        let mut env = format!(
            "via {via}\nconn {}\nfrom {}\n",
            conn,
            tx.from.as_deref().unwrap_or("")
        );
        for to in &tx.to {
            env.push_str(&format!("to {to}\n"));
        }
        // Written before the reply, the envelope last and whole (renamed
        // into place), so that whoever finds N.env finds both complete.
        let env_path = dir.join(format!("{n}.env"));
        let tmp = dir.join(format!("{n}.env.tmp"));
        let written = std::fs::write(dir.join(format!("{n}.eml")), &tx.body)
            .and_then(|()| std::fs::write(&tmp, env))
            .and_then(|()| std::fs::rename(&tmp, &env_path));
        if let Err(e) = written {
            eprintln!("could not store message {n}: {e}");
        }
    }
    tx.reset();
    out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
}
