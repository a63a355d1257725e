//! A fast SMTP sink for benchmarks: accepts every message on loopback and
//! prints the running count of messages received once a second.
//!
//! Usage: cargo run --release -p sesame-smtp --example smtp_sink -- PORT

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(2525);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            println!("{}", c.load(Ordering::Relaxed));
        }
    });
    loop {
        let (sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        let count = count.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            let mut line = Vec::with_capacity(1024);
            if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                return;
            }
            let mut in_data = false;
            // Replies wait in `out` until every command already received is
            // answered, so a pipelined group (MAIL, RCPT, DATA) gets its
            // replies in one write, as Postfix sends them.
            let mut out: Vec<u8> = Vec::with_capacity(256);
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if in_data {
                    if line == b".\r\n" {
                        in_data = false;
                        count.fetch_add(1, Ordering::Relaxed);
                        out.extend_from_slice(b"250 2.0.0 Ok\r\n");
                    }
                } else {
                    let upper = line.to_ascii_uppercase();
                    if upper.starts_with(b"EHLO") {
                        out.extend_from_slice(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
                    } else if upper.starts_with(b"DATA") {
                        in_data = true;
                        out.extend_from_slice(b"354 go ahead\r\n");
                    } else if upper.starts_with(b"QUIT") {
                        out.extend_from_slice(b"221 bye\r\n");
                        let _ = w.write_all(&out).await;
                        return;
                    } else {
                        out.extend_from_slice(b"250 2.0.0 Ok\r\n");
                    }
                }
                if !out.is_empty() && r.buffer().is_empty() {
                    if w.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        });
    }
}
