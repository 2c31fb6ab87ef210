//! The local HTTP endpoint: `/metrics` (Prometheus text format), `/status` (the topology as
//! JSON, with the config version in force) and `/health` (200 when a writer is known, for load
//! balancers and VRRP tracking), and two actions: `POST /switchover[?to=SERVER]` (what `rwsplit
//! switchover` calls) and `POST /reload` (as SIGHUP, answering with the outcome). One request per
//! connection, every read and write with a timeout; it binds to 127.0.0.1 unless configured
//! otherwise.

use crate::runtime::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until `shutdown` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((tcp, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(tcp, &shared).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads the request head (bounded to 8 KiB, within [`IO_TIMEOUT`]) and answers (the answer
/// written within [`IO_TIMEOUT`]; a switchover takes what its own steps' bounds allow).
async fn handle(mut tcp: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read_head = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(IO_TIMEOUT, read_head).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    let head = String::from_utf8_lossy(&buf);
    let request_line = head.lines().next().unwrap_or("");
    let (status, content_type, body) = match switchover_request(request_line) {
        Some(to) => switchover(shared, to.as_deref()).await,
        None if is_reload_request(request_line) => reload(shared).await,
        None => {
            let openmetrics = head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("accept:") && l.contains("application/openmetrics-text"));
            respond(request_line, openmetrics, shared)
        }
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::time::timeout(IO_TIMEOUT, async {
        tcp.write_all(resp.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await
    .map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// `POST /switchover[?to=NAME]`: `Some(target)`; anything else: `None`.
fn switchover_request(request_line: &str) -> Option<Option<String>> {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "POST" || path != "/switchover" {
        return None;
    }
    let to = query.split('&').find_map(|kv| kv.strip_prefix("to=")).filter(|v| !v.is_empty()).map(str::to_string);
    Some(to)
}

/// `POST /reload`.
fn is_reload_request(request_line: &str) -> bool {
    let mut parts = request_line.split_whitespace();
    parts.next() == Some("POST") && parts.next() == Some("/reload")
}

/// Reloads the config file and answers with what changed (JSON) or why it was refused.
async fn reload(shared: &Arc<Shared>) -> (&'static str, &'static str, String) {
    match crate::reload::request(shared).await {
        Ok(report) => {
            let body = serde_json::json!({ "result": "applied", "report": report });
            ("200 OK", "application/json", format!("{body}\n"))
        }
        Err(e) => {
            let body = serde_json::json!({ "result": "refused", "error": e });
            ("409 Conflict", "application/json", format!("{body}\n"))
        }
    }
}

/// Runs a switchover and answers with its report (JSON) or why it did not happen.
async fn switchover(shared: &Shared, to: Option<&str>) -> (&'static str, &'static str, String) {
    use crate::promotion::{switchover::switchover, PromotionError};
    match switchover(shared, to).await {
        Ok(r) => {
            let body = serde_json::json!({
                "result": "done",
                "old_writer": r.old_writer,
                "new_writer": r.new_writer,
                "repointed": r.repointed,
                "not_repointed": r.not_repointed.iter().map(|(s, why)| serde_json::json!({"server": s, "error": why})).collect::<Vec<_>>(),
                "writes_held_ms": r.held_ms,
            });
            ("200 OK", "application/json", format!("{body}\n"))
        }
        Err(e) => {
            let status = match e {
                PromotionError::Refused(_) | PromotionError::Busy => "409 Conflict",
                _ => "500 Internal Server Error",
            };
            let body = serde_json::json!({ "result": e.outcome(), "error": e.to_string() });
            (status, "application/json", format!("{body}\n"))
        }
    }
}

/// The topology snapshot (each server with its reading sessions), plus the VRRP instances'
/// state when any run.
fn status_json(topology: &rwsplit_replication::Topology, shared: &Shared) -> serde_json::Result<String> {
    let mut value = serde_json::to_value(topology)?;
    if let Some(servers) = value.get_mut("servers").and_then(|s| s.as_array_mut()) {
        for (i, server) in servers.iter_mut().enumerate() {
            if let Some(obj) = server.as_object_mut() {
                obj.insert("reading_sessions".into(), shared.reading_sessions(i).into());
            }
        }
    }
    let instances = shared.vrrp.load();
    if let (false, Some(obj)) = (instances.is_empty(), value.as_object_mut()) {
        let vrrp: Vec<serde_json::Value> = instances
            .iter()
            .map(|(name, s)| {
                serde_json::json!({
                    "instance": name,
                    "state": format!("{:?}", s.state()).to_lowercase(),
                    "priority": s.priority(),
                    "transitions": s.transitions(),
                })
            })
            .collect();
        obj.insert("vrrp".into(), serde_json::Value::Array(vrrp));
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert("config".into(), serde_json::to_value(shared.config_version().as_ref())?);
        obj.insert(
            "promotion".into(),
            serde_json::json!({
                "running": shared.promotions.is_running(),
                "writes_held": shared.writes.is_held(),
                "recent_steps": shared.promotions.recent_steps(),
            }),
        );
    }
    serde_json::to_string_pretty(&value)
}

/// The response for a request line: (status, content type, body). `/metrics` is OpenMetrics
/// when the client accepts it (Prometheus does), else Prometheus text 0.0.4.
pub fn respond(request_line: &str, openmetrics: bool, shared: &Shared) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return ("405 Method Not Allowed", "text/plain", "GET only (and POST /switchover, POST /reload)\n".into());
    }
    let path = path.split('?').next().unwrap_or("");
    let topology = shared.topology.load();
    match path {
        "/metrics" => {
            shared.metrics.refresh(&topology, |i| shared.pool.open_count(i), |i| shared.reading_sessions(i));
            shared.metrics.refresh_vrrp(&shared.vrrp.load());
            if openmetrics {
                ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", shared.metrics.encode())
            } else {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", shared.metrics.encode_prometheus_text())
            }
        }
        "/status" => match status_json(&topology, shared) {
            Ok(json) => ("200 OK", "application/json", json + "\n"),
            Err(e) => ("500 Internal Server Error", "text/plain", format!("{e}\n")),
        },
        "/health" => match topology.writer() {
            Some(_) => ("200 OK", "text/plain", "ok\n".into()),
            None => ("503 Service Unavailable", "text/plain", "no writer known\n".into()),
        },
        _ => ("404 Not Found", "text/plain", "try /metrics, /status or /health\n".into()),
    }
}
