//! The client listener: accepts connections, enforces `proxy.max_connections` (a client over
//! the limit gets ERR 1040 instead of a greeting, as MySQL does) and runs one session task per
//! client until shutdown.

use crate::error::ProxyError;
use crate::protocol::frame::write_packet;
use crate::runtime::Shared;
use bytes::BytesMut;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Accepts clients until `shutdown` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(shared.config().proxy.max_connections as usize));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (mut tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    crate::session::serve(shared, tcp).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(peer = %peer, "client refused: proxy.max_connections reached");
                tokio::spawn(async move {
                    let mut b = BytesMut::new();
                    write_packet(&mut b, 0, &ProxyError::TooManyConnections.err_packet());
                    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&b)).await;
                });
            }
        }
    }
}
