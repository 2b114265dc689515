//! The test proxy survives accept errors. Its own test binary: it lowers
//! the process's open-file limit, which would disturb other tests.

use std::time::Duration;

use journal_core::testkit::TcpProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sets the soft limit on open files; returns the previous one.
fn set_open_files(soft: libc::rlim_t) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid, owned rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
    }
    old
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Before, the proxy's accept loop ended at the first accept error: the
/// listener was dropped and every later connect refused, silently, so a
/// harness saw a peer that never answered. With every file descriptor
/// taken, accept fails (EMFILE); once they are freed, the queued
/// connection must be forwarded.
#[tokio::test(flavor = "current_thread")]
async fn the_proxy_keeps_listening_after_accept_fails() {
    let proxy = TcpProxy::start(echo_server().await).await.unwrap();
    // A blocking connect, then no await until the descriptors are taken:
    // on this single-threaded runtime the proxy cannot accept before.
    let client = std::net::TcpStream::connect(proxy.local_addr()).unwrap();
    // Take every descriptor left, so the proxy's accept (and its connect
    // to the target) cannot get one.
    let old = set_open_files(open_files() as libc::rlim_t + 8);
    let mut hogs = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while proxy.accept_errors() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "accept never failed with no descriptor left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(hogs);
    set_open_files(old.rlim_cur);
    assert!(proxy.is_listening(), "the proxy stopped listening");
    client.set_nonblocking(true).unwrap();
    let mut client = TcpStream::from_std(client).unwrap();

    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut buf))
        .await
        .expect("the queued connection is forwarded once descriptors are free")
        .unwrap();
    assert_eq!(&buf, b"ping");
    // New connections work too.
    let mut again = TcpStream::connect(proxy.local_addr()).await.unwrap();
    again.write_all(b"pong").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), again.read_exact(&mut buf))
        .await
        .expect("a new connection is forwarded")
        .unwrap();
    assert_eq!(&buf, b"pong");
}
