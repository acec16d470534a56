//! Whether a dev server answers HTTP yet: a forwarder's socket accepts connections before
//! the server behind it listens, so only an HTTP status line counts.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DevEndpoint;

/// One `GET /` through `endpoint`; `true` once an HTTP status line comes back.
pub(super) async fn answers_http(endpoint: &DevEndpoint) -> bool {
    let probe = async {
        match endpoint {
            DevEndpoint::Unix(path) => exchange(tokio::net::UnixStream::connect(path).await?).await,
            DevEndpoint::Tcp(port) => {
                exchange(tokio::net::TcpStream::connect(("127.0.0.1", *port)).await?).await
            }
        }
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut stream: S) -> std::io::Result<bool> {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).await?;
    Ok(head.starts_with(b"HTTP/1."))
}
