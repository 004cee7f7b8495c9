//! Slow clients cannot hold connections forever: with
//! `header_read_timeout = 2 s`, connections that trickle a request head one
//! byte a second, send nothing at all, or sit idle after a response are
//! closed a couple of seconds later, while the server keeps answering
//! others. (Before, 200 such connections stayed open for a minute and
//! more.)

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::TestServer;

const TIMEOUT: Duration = Duration::from_secs(2);
/// How long past the timeout a close may take (scheduling, slow CI).
const SLACK: Duration = Duration::from_secs(4);

async fn server() -> TestServer {
    TestServer::start_with(|c| c.connections.header_read_timeout = TIMEOUT).await
}

/// Reads until the server closes the connection (or resets it); returns
/// what it sent. Panics if it is still open after `TIMEOUT + SLACK` plus
/// `extra`.
async fn read_until_closed(reader: &mut (impl AsyncReadExt + Unpin), extra: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = TIMEOUT + SLACK + extra;
    tokio::time::timeout(deadline, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the connection is still open after {deadline:?}"));
    got
}

/// A connection that sends the start of a request head, then one byte a
/// second forever; returns when the server closed it, and after how long.
async fn trickle(host_port: String) -> Duration {
    let stream = TcpStream::connect(&host_port).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let start = Instant::now();
    let trickler = tokio::spawn(async move {
        let head = format!("GET /v2/ HTTP/1.1\r\nHost: {host_port}\r\nX-Slow: ");
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    read_until_closed(&mut reader, Duration::ZERO).await;
    trickler.abort();
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off() {
    let server = server().await;
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(trickle(server.host_port.clone())))
        .collect();
    // Meanwhile the server answers others.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = server
        .client
        .get(format!("{}/v2/", server.url))
        .send()
        .await;
    assert_eq!(resp.unwrap().status(), reqwest::StatusCode::UNAUTHORIZED);
    for s in slow {
        let held = s.await.unwrap();
        assert!(
            held >= TIMEOUT - Duration::from_millis(500),
            "closed too early: {held:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let server = server().await;
    // Connected, nothing sent.
    let mut silent = TcpStream::connect(&server.host_port).await.unwrap();
    let start = Instant::now();
    read_until_closed(&mut silent, Duration::ZERO).await;
    assert!(start.elapsed() >= TIMEOUT - Duration::from_millis(500));

    // One request answered, then idle on a keep-alive connection.
    let mut idle = TcpStream::connect(&server.host_port).await.unwrap();
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n",
        server.host_port
    );
    idle.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut idle, Duration::ZERO).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // A head sent slowly but within the limit is answered.
    let mut slowish = TcpStream::connect(&server.host_port).await.unwrap();
    for part in request.as_bytes().chunks(request.len() / 3 + 1) {
        slowish.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let answer = read_until_closed(&mut slowish, Duration::ZERO).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    server.stop().await;
}
