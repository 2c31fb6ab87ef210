//! The `rwsplit` binary: `rwsplit --config FILE` runs the proxy; `check` validates a config;
//! `status` prints a running instance's topology. Errors at start name the file, the line and
//! the reason and exit non-zero; SIGHUP reloads the config (a bad one is reported and the
//! running one kept); SIGTERM stops cleanly. Under systemd it reports READY once the listener
//! is bound and the first topology is known, and feeds the watchdog from the runtime.
//! `[[vrrp]]` instances start once the listener is bound and stop first on SIGTERM (priority-0
//! advert: the backup takes over at once); `import-keepalived FILE` prints a keepalived.conf's
//! VRRP part as `[[vrrp]]` TOML, `import-amoeba AMOEBA_XML DBSERVERS_XML` an Amoeba
//! configuration as a whole rwsplit.toml.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rwsplit_config::Config;
use rwsplit_proxy::runtime::Shared;
use rwsplit_proxy::vrrp::{self, Vrrp};
use rwsplit_replication::{Monitor, Topology, TopologyHandle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "rwsplit",
    version,
    about = "MySQL/MariaDB read/write splitting proxy with replication awareness and embedded VRRP"
)]
struct Cli {
    /// Config file (TOML).
    #[arg(short, long, global = true, default_value = "/etc/rwsplit/rwsplit.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the proxy (the default).
    Run,
    /// Validate the config and exit: every problem with its file and line.
    Check,
    /// Print the topology of a running rwsplit (from its admin endpoint) as a table.
    Status {
        /// Admin address; defaults to `admin.listen` from the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Switch the writer role to another server without client errors: writes are held
    /// (not failed) while the old writer turns read_only, the target catches up and is
    /// promoted, and the others are repointed to it. Asks the running rwsplit (admin endpoint).
    Switchover {
        /// The server to promote (its name in the config); default: the most advanced healthy
        /// replica.
        #[arg(long)]
        to: Option<String>,
        /// Admin address; defaults to `admin.listen` from the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Reload the config of a running rwsplit (as SIGHUP does) and print what changed, or why
    /// it was refused (the running config then stays in force). Asks the admin endpoint.
    Reload {
        /// Admin address; defaults to `admin.listen` from the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Print the VRRP part of a keepalived.conf as rwsplit `[[vrrp]]` TOML on stdout; what is
    /// not imported (LVS, SMTP, sync groups…) and warnings go to stderr with their lines.
    ImportKeepalived {
        /// The keepalived configuration file.
        file: PathBuf,
    },
    /// Print an Amoeba configuration (amoeba.xml and dbServers.xml) as a whole rwsplit.toml on
    /// stdout; what is not imported (thread pools, sharding rules, IP access list…) and
    /// warnings (values to fill in, such as the monitor account) go to stderr with their lines.
    ImportAmoeba {
        /// Amoeba's amoeba.xml (listener, login, queryRouter pools).
        amoeba: PathBuf,
        /// Amoeba's dbServers.xml (servers, virtual pools, backend account).
        db_servers: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    if let Some(Cmd::ImportKeepalived { file }) = &cli.command {
        return import_keepalived(file);
    }
    if let Some(Cmd::ImportAmoeba { amoeba, db_servers }) = &cli.command {
        return import_amoeba(amoeba, db_servers);
    }
    let config = match rwsplit_config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("rwsplit: {} error(s) in {}", errors.0.len(), cli.config.display());
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Cmd::Run) {
        Cmd::Check => {
            println!("{}: ok ({} servers, {} users)", cli.config.display(), config.servers.len(), config.users.len());
            Ok(())
        }
        Cmd::Status { admin } => status(admin.unwrap_or_else(|| config.admin.listen.clone())),
        Cmd::Run => run(cli.config.clone(), config),
        Cmd::Reload { admin } => reload(admin.unwrap_or_else(|| config.admin.listen.clone())),
        Cmd::Switchover { to, admin } => {
            switchover(admin.unwrap_or_else(|| config.admin.listen.clone()), to.as_deref())
        }
        Cmd::ImportKeepalived { .. } | Cmd::ImportAmoeba { .. } => unreachable!("handled before the config is loaded"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rwsplit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: PathBuf, config: Config) -> Result<()> {
    // Sessions run on their own threads (`proxy.worker_threads`); this runtime keeps the
    // listener, the monitor, VRRP and the admin endpoint, which need little.
    let workers = Arc::new(
        rwsplit_proxy::workers::Workers::start(config.proxy.worker_threads as usize)
            .context("cannot start the session threads")?,
    );
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().thread_name("rwsplit").build()?;
    runtime.block_on(serve(path, config, workers))
}

/// The version string clients see: the writer's own, marked as coming through rwsplit.
/// MariaDB servers prefix theirs with "5.5.5-" for old clients; so do we.
fn announced_version(config: &Config, topology: &Topology) -> String {
    if !config.proxy.server_version.is_empty() {
        return config.proxy.server_version.clone();
    }
    let writer = topology.writer().and_then(|(_, s)| s.version.clone());
    match writer {
        Some(v) if v.contains("MariaDB") => format!("5.5.5-{}-rwsplit", v.trim_start_matches("5.5.5-")),
        Some(v) => format!("{v}-rwsplit"),
        None => "8.0.36-rwsplit".into(),
    }
}

async fn serve(path: PathBuf, config: Config, workers: Arc<rwsplit_proxy::workers::Workers>) -> Result<()> {
    let topology = TopologyHandle::new(Topology::unknown(
        config.servers.iter().map(|s| (s.name.clone(), s.address.clone(), s.weight)),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Know the cluster before taking clients: READY means routable.
    // TLS towards the servers (backend.tls*): files are read now, so a bad one stops the start.
    let backend_tls = rwsplit_proxy::backend::tls::for_servers(&config.backend, &config.servers)
        .map_err(|e| anyhow::anyhow!("backend TLS: {e}"))?;
    let mut monitor = Monitor::new(&config.monitor, &config.servers, topology.clone())
        .with_tls(rwsplit_proxy::backend::tls::for_monitor(&config.backend, &config.servers));
    monitor.check_once().await;
    let first = topology.load();
    match first.writer() {
        Some((_, w)) => {
            tracing::info!(writer = %w.name, replicas = first.readable_replicas().count(), "initial topology")
        }
        None => tracing::warn!("no writer found at start; writes fail until one is seen"),
    }
    // The file as it was loaded, for the config version `rwsplit status` shows.
    let file = std::fs::read(&path).unwrap_or_default();
    let mut monitor_stop = stop_rx.clone();

    let version = announced_version(&config, &first);
    let vrrp_instances = config.vrrp.clone();
    let listen = config.proxy.listen.clone();
    let admin_listen = config.admin.listen.clone();
    let tls = match (config.proxy.tls_cert.as_str(), config.proxy.tls_key.as_str()) {
        ("", _) | (_, "") => None,
        (cert, key) => Some(
            rwsplit_proxy::tls::acceptor(cert, key)
                .map_err(|e| anyhow::anyhow!("TLS (proxy.tls_cert / proxy.tls_key): {e}"))?,
        ),
    };
    let shared = Shared::new(config, &file, topology, version, tls, backend_tls);
    let monitor_task = tokio::spawn(monitor.with_updates(shared.monitor_updates()).run(async move {
        let _ = monitor_stop.changed().await;
    }));

    if let Some(hint) = vrrp::listen_on_vip(&listen, &vrrp_instances) {
        tracing::warn!("{hint}");
    }
    let listener =
        TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen} (proxy.listen)"))?;
    let admin = TcpListener::bind(&admin_listen)
        .await
        .with_context(|| format!("cannot listen on {admin_listen} (admin.listen)"))?;
    tracing::info!(listen = %listen, admin = %admin_listen, version = %shared.server_version, "rwsplit ready");

    let listening = Arc::new(AtomicBool::new(true)); // bound above; cleared if its task ends
    let clients = tokio::spawn(vrrp::alive_while(
        listening.clone(),
        rwsplit_proxy::listener::serve(listener, shared.clone(), workers, stop_rx.clone()),
    ));
    let mut vrrp = start_vrrp(&vrrp_instances, &shared, listening.clone(), &stop_rx)?;
    let admin_task = tokio::spawn(rwsplit_proxy::admin::serve(admin, shared.clone(), stop_rx.clone()));
    let config = shared.config();
    tokio::spawn(rwsplit_proxy::sessions::abort_on_down(
        shared.sessions.clone(),
        shared.topology.clone(),
        Duration::from_millis(100),
        stop_rx.clone(),
    ));
    tokio::spawn(rwsplit_proxy::promotion::failover::watch(shared.clone(), stop_rx.clone()));
    tokio::spawn(rwsplit_proxy::schemas::watch(
        shared.pool.clone(),
        shared.topology.clone(),
        shared.schemas.clone(),
        Duration::from_millis(config.monitor.interval_ms),
        Duration::from_millis(config.backend.connect_timeout_ms),
        stop_rx.clone(),
    ));
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    if let Some(every) = sd_notify::watchdog_enabled() {
        // Fed from the runtime itself: if the runtime stalls, systemd notices and restarts us.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every / 2);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        });
    }

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Reloads run here, one at a time: SIGHUP, and POST /reload through this channel.
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<rwsplit_proxy::reload::ReloadRequest>(1);
    let _ = shared.reload_requests.set(reload_tx);
    let mut reloader = Reloader { path: path.clone(), shared: shared.clone(), listening, stop: stop_rx.clone() };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = reloader.reload(&mut vrrp).await;
            }
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(reloader.reload(&mut vrrp).await);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop_vrrp(vrrp).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = clients.await;
        let _ = admin_task.await;
        let _ = monitor_task.await;
    })
    .await;
    Ok(())
}

/// Starts the `[[vrrp]]` instances (none configured: nothing). A setup error (no
/// CAP_NET_RAW/CAP_NET_ADMIN, unknown interface) fails the start: a node that silently never
/// takes its VIP is worse than one that does not run.
fn start_vrrp(
    instances: &[rwsplit_config::VrrpInstanceConfig],
    shared: &Arc<Shared>,
    listening: Arc<AtomicBool>,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Vrrp>> {
    if instances.is_empty() {
        return Ok(None);
    }
    let v = Vrrp::start(instances, shared.clone(), listening, stop.clone())?;
    shared.vrrp.store(Arc::new(v.stats()));
    tracing::info!(instances = instances.len(), proxy_healthy = v.healthy(), "VRRP running");
    Ok(Some(v))
}

/// Hands the VIPs over (priority 0) before the listener closes.
async fn stop_vrrp(vrrp: Option<Vrrp>) {
    if let Some(v) = vrrp {
        let _ = tokio::task::spawn_blocking(move || v.stop()).await;
    }
}

/// `rwsplit import-keepalived FILE`: TOML on stdout; ignored parts and warnings on stderr as
/// `FILE:LINE: …`; errors (syntax, values rwsplit refuses) as `FILE:LINE: …` and exit 2.
fn import_keepalived(file: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rwsplit: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match rwsplit_config::import::keepalived::import_keepalived(&text, file) {
        Ok(out) => {
            print!("{}", out.toml);
            for (line, what) in &out.ignored {
                eprintln!("{}:{line}: ignored: {what}", file.display());
            }
            for (line, what) in &out.warnings {
                eprintln!("{}:{line}: warning: {what}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("rwsplit: {} error(s) in {}", errors.len(), file.display());
            ExitCode::from(2)
        }
    }
}

/// `rwsplit import-amoeba AMOEBA_XML DBSERVERS_XML`: TOML on stdout; ignored parts and warnings
/// on stderr as `FILE:LINE: …`; errors as `FILE:LINE: …` and exit 2.
fn import_amoeba(amoeba: &Path, db_servers: &Path) -> ExitCode {
    // Bytes, not text: Amoeba's files are often gbk (the importer checks the values it uses).
    let read = |file: &Path| std::fs::read(file).map_err(|e| eprintln!("rwsplit: cannot read {}: {e}", file.display()));
    let (Ok(amoeba_xml), Ok(db_servers_xml)) = (read(amoeba), read(db_servers)) else {
        return ExitCode::FAILURE;
    };
    match rwsplit_config::import::import_amoeba(amoeba, &amoeba_xml, db_servers, &db_servers_xml) {
        Ok(out) => {
            print!("{}", out.toml);
            for n in &out.ignored {
                eprintln!("{}:{}: ignored: {}", n.file.display(), n.line, n.what);
            }
            for n in &out.warnings {
                eprintln!("{}:{}: warning: {}", n.file.display(), n.line, n.what);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("rwsplit: {} error(s) in {} and {}", errors.len(), amoeba.display(), db_servers.display());
            ExitCode::from(2)
        }
    }
}

/// What a reload needs besides the shared state: the config file and what starting VRRP
/// instances takes.
struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    listening: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
}

impl Reloader {
    /// SIGHUP or POST /reload: the file is loaded and validated and checked against the
    /// running process ([`rwsplit_proxy::reload::prepare`]); VRRP changes are made; then the
    /// rest is committed. Anything refused leaves the running config in force.
    /// Under systemd, RELOADING=1 goes with MONOTONIC_USEC (CLOCK_MONOTONIC now, in one
    /// datagram) as `Type=notify-reload` requires: systemd (253 and later) takes a RELOADING=1
    /// as the answer to its SIGHUP only if it is stamped at or after the signal; READY=1
    /// follows when done.
    /// Answers once routing follows the new server list (bounded; the monitor applies it
    /// between its rounds).
    async fn reload(&mut self, vrrp: &mut Option<Vrrp>) -> Result<rwsplit_proxy::reload::ReloadReport, String> {
        use rwsplit_proxy::reload::{prepare, ReloadError};
        let mut reloading = vec![sd_notify::NotifyState::Reloading];
        reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
        let _ = sd_notify::notify(&reloading);
        let shared = &self.shared;
        let outcome = (|| {
            let file = std::fs::read(&self.path).unwrap_or_default();
            let new = rwsplit_config::load(&self.path).map_err(ReloadError::Invalid)?;
            let prepared = prepare(shared, new, &file)?;
            self.reconfigure_vrrp(vrrp, prepared.vrrp()).map_err(|e| ReloadError::Vrrp(format!("{e:#}")))?;
            Ok(prepared.commit(shared))
        })();
        let label = |outcome: &str| vec![("outcome".to_string(), outcome.to_string())];
        let result = match outcome {
            Ok(report) => {
                shared.metrics.config_reloads.get_or_create(&label("ok")).inc();
                let limit = Duration::from_millis(
                    shared.config().monitor.connect_timeout_ms + 2 * shared.config().monitor.check_timeout_ms,
                );
                if !rwsplit_proxy::reload::wait_routing_follows(shared, limit).await {
                    tracing::warn!("the monitor has not applied the new server list yet (a round of checks is slow)");
                }
                tracing::info!(
                    config = %self.path.display(),
                    version = report.version.number,
                    sha256 = %report.version.sha256,
                    added = ?report.added,
                    removed = ?report.removed,
                    added_back = ?report.revived,
                    changed = ?report.changed,
                    "config reloaded"
                );
                if !report.restart_needed.is_empty() {
                    tracing::warn!("changes to {} take effect at the next restart", report.restart_needed.join(", "));
                }
                Ok(report)
            }
            Err(e) => {
                shared.metrics.config_reloads.get_or_create(&label("rejected")).inc();
                match &e {
                    ReloadError::Invalid(errors) => {
                        for e in &errors.0 {
                            tracing::error!("reload rejected, keeping the running config: {e}");
                        }
                    }
                    e => tracing::error!("reload rejected, keeping the running config: {e}"),
                }
                Err(e.to_string())
            }
        };
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        result
    }

    /// Brings the running VRRP instances to `instances` (starting VRRP if none ran).
    fn reconfigure_vrrp(
        &self,
        vrrp: &mut Option<Vrrp>,
        instances: &[rwsplit_config::VrrpInstanceConfig],
    ) -> Result<()> {
        match vrrp {
            Some(v) => tokio::task::block_in_place(|| v.reconfigure(instances))?,
            None if instances.is_empty() => return Ok(()),
            None => *vrrp = start_vrrp(instances, &self.shared, self.listening.clone(), &self.stop)?,
        }
        if let Some(v) = vrrp {
            self.shared.vrrp.store(Arc::new(v.stats()));
        }
        Ok(())
    }
}

/// One request to the admin endpoint (`method path`, no body); the answer's status line and
/// body. `timeout` bounds the wait for the answer.
fn admin_call(admin: &str, method: &str, path: &str, timeout: Duration) -> Result<(String, String)> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(admin)
        .with_context(|| format!("cannot reach rwsplit's admin endpoint at {admin}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.write_all(format!("{method} {path} HTTP/1.0\r\nHost: {admin}\r\nContent-Length: 0\r\n\r\n").as_bytes())?;
    let mut resp = String::new();
    tcp.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").context("malformed HTTP response")?;
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// `rwsplit status`: GET /status from the admin endpoint and print a table.
fn status(admin: String) -> Result<()> {
    let (_, body) = admin_call(&admin, "GET", "/status", Duration::from_secs(5))?;
    let topology: serde_json::Value = serde_json::from_str(&body).context("status is not JSON")?;
    print!("{}", status_table(&topology));
    Ok(())
}

/// `rwsplit reload`: POST /reload (as SIGHUP) and print what changed; fails (exit 1) with the
/// reasons when the running rwsplit refused the new config.
fn reload(admin: String) -> Result<()> {
    let (status, body) = admin_call(&admin, "POST", "/reload", Duration::from_secs(60))?;
    let v: serde_json::Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    if !status.contains(" 200 ") {
        anyhow::bail!("reload refused, the running config stays: {}", v["error"].as_str().unwrap_or(body.trim()));
    }
    let r = &v["report"];
    println!(
        "config reloaded: version {} (sha256 {})",
        r["version"]["number"],
        r["version"]["sha256"].as_str().unwrap_or("?")
    );
    for what in ["added", "removed", "revived", "changed"] {
        let names: Vec<&str> = r[what].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        if !names.is_empty() {
            println!("  servers {}: {}", if what == "revived" { "added back" } else { what }, names.join(", "));
        }
    }
    for setting in r["restart_needed"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
        eprintln!("warning: {setting} changed: takes effect at the next restart");
    }
    Ok(())
}

/// `rwsplit switchover`: POST /switchover and print the outcome; fails (exit 1) when the
/// switchover was refused or did not finish.
fn switchover(admin: String, to: Option<&str>) -> Result<()> {
    let query = to.map(|t| format!("?to={t}")).unwrap_or_default();
    // The steps are bounded by monitor.promotion_timeout_ms each; this only guards against a
    // process that never answers.
    let (status, body) = admin_call(&admin, "POST", &format!("/switchover{query}"), Duration::from_secs(600))?;
    let body = body.as_str();
    let v: serde_json::Value = serde_json::from_str(body).context("the answer is not JSON")?;
    if status.contains(" 200 ") {
        println!(
            "switchover done: {} -> {} (writes held {} ms); repointed: {}",
            v["old_writer"].as_str().unwrap_or("?"),
            v["new_writer"].as_str().unwrap_or("?"),
            v["writes_held_ms"],
            v["repointed"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        );
        for n in v["not_repointed"].as_array().into_iter().flatten() {
            eprintln!(
                "warning: {} not repointed: {}",
                n["server"].as_str().unwrap_or("?"),
                n["error"].as_str().unwrap_or("?")
            );
        }
        Ok(())
    } else {
        anyhow::bail!(
            "switchover {}: {}",
            v["result"].as_str().unwrap_or("failed"),
            v["error"].as_str().unwrap_or(body.trim())
        )
    }
}

/// Renders the `/status` JSON as a table (one row per server).
fn status_table(t: &serde_json::Value) -> String {
    let writer = t["writer"].as_u64();
    let mut out = format!(
        "{:<12} {:<22} {:<8} {:<8} {:<9} {:>9}  {}\n",
        "SERVER", "ADDRESS", "ROLE", "HEALTH", "READABLE", "LAG_MS", "REASON"
    );
    for (i, s) in t["servers"].as_array().into_iter().flatten().enumerate() {
        let role =
            if writer == Some(i as u64) { "writer".to_string() } else { s["role"].as_str().unwrap_or("?").to_string() };
        let lag = s["lag_ms"].as_u64().map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        out += &format!(
            "{:<12} {:<22} {:<8} {:<8} {:<9} {:>9}  {}\n",
            s["name"].as_str().unwrap_or("?"),
            s["address"].as_str().unwrap_or("?"),
            role,
            s["health"].as_str().unwrap_or("?"),
            s["readable"].as_bool().unwrap_or(false),
            lag,
            s["reason"].as_str().unwrap_or("")
        );
    }
    let config = &t["config"];
    if let Some(n) = config["number"].as_u64() {
        out += &format!("config: version {n} (sha256 {})\n", config["sha256"].as_str().unwrap_or("?"));
    }
    let promotion = &t["promotion"];
    if promotion["running"].as_bool() == Some(true) || promotion["writes_held"].as_bool() == Some(true) {
        out += "promotion: running (writes held: ";
        out += if promotion["writes_held"].as_bool() == Some(true) { "yes)\n" } else { "no)\n" };
    }
    let steps: Vec<&str> =
        promotion["recent_steps"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
    if !steps.is_empty() {
        out += "recent switchover/failover steps:\n";
        for s in steps.iter().rev().take(10).rev() {
            out += &format!("  {s}\n");
        }
    }
    out
}
