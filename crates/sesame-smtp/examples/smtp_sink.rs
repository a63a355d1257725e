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
                        let _ = w.write_all(b"250 2.0.0 Ok\r\n").await;
                    }
                    continue;
                }
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with(b"EHLO") {
                    b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                } else if upper.starts_with(b"DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if upper.starts_with(b"QUIT") {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 2.0.0 Ok\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}
