//! Automatic failover (`monitor.auto_failover`) and the rejoin of a former writer.
//!
//! On every topology the monitor publishes, when the writer is lost
//! ([`election::failover_candidate`]: down after `fall` checks and no replica's IO thread
//! reaches it) this task, on the node allowed to act (the VRRP master of
//! `monitor.failover_vrrp_instance` when VRRP runs), promotes the replica that received the most:
//!
//! 1. take the server-side lock `rwsplit_failover` (`GET_LOCK`, no wait) on every replica that
//!    answers, in config order — a node that misses one backs off, so two nodes never promote
//!    two servers — and check, fresh, that no server has `read_only=OFF` (another node may
//!    have just promoted one);
//! 2. let the candidate apply its whole relay log (with semi-sync, the acknowledged
//!    transactions are there), promote it and repoint the other replicas to it;
//! 3. release the locks; writes waiting for a writer (`routing.writer_wait_ms`) go to it as
//!    soon as the monitor sees it.
//!
//! A former writer this node demoted that answers again is rejoined as a replica of the new
//! writer when every transaction it has is also on the new writer
//! ([`election::rejoin_blockers`]); otherwise it stays out of the pool and an alert says which
//! GTIDs only it has.

use super::{count, run_hook, step, wait_for_writer, PromotionError};
use crate::runtime::Shared;
use rwsplit_replication::election::{self, Refusal};
use rwsplit_replication::{Health, Topology};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const KIND: &str = "failover";

/// Watches the topology until `stop` turns true.
pub async fn watch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut changes = shared.topology.subscribe();
    let mut last_refusal: Option<String> = None;
    let mut blocked_rejoins: Vec<(usize, String)> = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = changes.changed() => if r.is_err() { break },
        }
        let auto = shared.config().monitor.auto_failover;
        if !auto || !may_act(&shared) || shared.promotions.is_running() {
            continue;
        }
        let topology = shared.topology.snapshot();
        match election::failover_candidate(&topology) {
            Ok(candidate) => match failover(&shared, &topology, candidate, last_refusal.as_deref()).await {
                Ok(Outcome::Promoted) => last_refusal = None,
                Ok(Outcome::OtherNode(why)) => last_refusal = Some(why),
                Err(e) => last_refusal = Some(e.to_string()),
            },
            Err(Refusal::WriterNotLost(_)) => last_refusal = None,
            Err(r) => {
                // Lost, but nothing can be promoted: say so once per reason.
                let text = r.to_string();
                if last_refusal.as_ref() != Some(&text) {
                    tracing::error!(promotion = KIND, "the writer is lost and no failover is possible: {text}");
                    last_refusal = Some(text);
                }
            }
        }
        rejoin(&shared, &topology, &mut blocked_rejoins).await;
    }
}

/// Whether this node may fail over: no VRRP, or VRRP master of the configured instance.
fn may_act(shared: &Shared) -> bool {
    let instances = shared.vrrp.load();
    if instances.is_empty() {
        return true;
    }
    let wanted = shared.config().monitor.failover_vrrp_instance.clone();
    let instance = if wanted.is_empty() { instances.first() } else { instances.iter().find(|(n, _)| *n == wanted) };
    instance.is_some_and(|(_, s)| s.state() == rwsplit_ha::fsm::State::Master)
}

/// What a failover attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Promoted,
    /// Another node acts, or acted (why).
    OtherNode(String),
}

/// Promotes `candidate` after the writer was lost. `said`: what the previous attempt of this
/// episode reported, so that a node backing off round after round says it once.
pub async fn failover(
    shared: &Shared,
    topology: &Topology,
    candidate: usize,
    said: Option<&str>,
) -> Result<Outcome, PromotionError> {
    let result = run(shared, topology, candidate).await;
    match &result {
        Ok(Outcome::Promoted) => count(shared, KIND, "done"),
        Ok(Outcome::OtherNode(why)) => {
            if said != Some(why.as_str()) {
                count(shared, KIND, "skipped");
                step(shared, KIND, why.clone());
            }
        }
        Err(e) => {
            if said != Some(e.to_string().as_str()) {
                count(shared, KIND, e.outcome());
                step(shared, KIND, format!("not done: {e}"));
            }
        }
    }
    result
}

async fn run(shared: &Shared, topology: &Topology, candidate: usize) -> Result<Outcome, PromotionError> {
    let _running = shared.promotions.start()?;
    let config = shared.config();
    let limit = Duration::from_millis(config.monitor.promotion_timeout_ms);
    let promoter = crate::backend::tls::promoter(&config);
    drop(config);
    let semisync = topology.semisync.as_ref().is_some_and(|s| s.enabled);
    let servers = &topology.servers;
    let Some(target) = servers.get(candidate) else {
        return Ok(Outcome::OtherNode("the candidate left the config".into()));
    };
    let lost = servers.iter().position(|s| s.role == rwsplit_replication::Role::Writer && s.health == Health::Down);
    let lost_name = lost.and_then(|i| servers.get(i)).map_or("?", |s| s.name.as_str());
    let failed = |step: &'static str, server: &str, cause| PromotionError::Step {
        step,
        server: server.to_string(),
        cause,
        rolled_back: false,
    };

    // 1. The locks, on every replica that answers, in config order.
    let mut locks = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        if Some(i) == lost || s.health != Health::Up {
            continue;
        }
        match promoter.lock(&s.address).await {
            Ok(Some(conn)) => locks.push(conn),
            Ok(None) => {
                return Ok(Outcome::OtherNode(format!(
                    "another rwsplit node holds the failover lock on {}: it acts",
                    s.name
                )));
            }
            Err(e) => return Err(failed("GET_LOCK", &s.name, e)),
        }
    }
    for s in servers.iter().filter(|s| s.health == Health::Up) {
        if promoter.is_writable(&s.address).await.map_err(|e| failed("SELECT @@read_only", &s.name, e))? {
            return Ok(Outcome::OtherNode(format!("{} has read_only=OFF already: nothing to promote", s.name)));
        }
    }

    // 2. Promote.
    step(shared, KIND, format!("writer {lost_name} lost; {} applies its relay log", target.name));
    promoter.apply_relay_log(&target.address, limit).await.map_err(|e| failed("MASTER_GTID_WAIT", &target.name, e))?;
    step(shared, KIND, format!("promoting {}", target.name));
    promoter.promote(&target.address, semisync).await.map_err(|e| failed("promote", &target.name, e))?;
    if let Some(l) = lost {
        shared.promotions.note_demoted(l);
    }
    let mut repointed = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        if i == candidate || Some(i) == lost || s.health != Health::Up {
            continue;
        }
        match promoter.replicate_from(&s.address, &target.address, false, semisync).await {
            Ok(()) => {
                step(shared, KIND, format!("{} replicates from {}", s.name, target.name));
                repointed.push(s.name.clone());
            }
            Err(e) => step(shared, KIND, format!("{} could not be repointed: {e}", s.name)),
        }
    }
    // 3. Release the locks; the new writer takes the waiting writes once the monitor sees it.
    drop(locks);
    let seen = wait_for_writer(shared, candidate, limit).await;
    step(
        shared,
        KIND,
        format!("done: {} is the writer{}", target.name, if seen { "" } else { " (not yet seen by the monitor)" }),
    );
    run_hook(shared, "failover", &target.name, "master");
    for r in &repointed {
        run_hook(shared, "failover", r, "replica");
    }
    Ok(Outcome::Promoted)
}

/// Rejoins former writers this node demoted, once they answer again.
async fn rejoin(shared: &Shared, topology: &Topology, blocked: &mut Vec<(usize, String)>) {
    let Some((w, writer)) = topology.writer() else { return };
    for d in shared.promotions.demoted() {
        let Some(s) = topology.servers.get(d) else { continue };
        if d == w || s.health != Health::Up {
            continue;
        }
        let Ok(_running) = shared.promotions.start() else { return };
        let promoter = crate::backend::tls::promoter(&shared.config());
        let (old_pos, new_state) =
            match (promoter.binlog_position(&s.address).await, promoter.binlog_state(&writer.address).await) {
                (Ok(o), Ok(n)) => (o, n),
                _ => continue, // Asked again at the next round.
            };
        let blockers = election::rejoin_blockers(&old_pos, &new_state);
        if !blockers.is_empty() {
            let list = blockers.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",");
            if !blocked.iter().any(|(b, l)| *b == d && *l == list) {
                tracing::error!(
                    server = %s.name,
                    "former writer {} holds transactions the new writer {} never received ({list}): kept out of the pool; a person must decide",
                    s.name,
                    writer.name
                );
                step(shared, "rejoin", format!("{} not rejoined: it alone has {list}", s.name));
                count(shared, "rejoin", "refused");
                blocked.retain(|(b, _)| *b != d);
                blocked.push((d, list));
            }
            continue;
        }
        let semisync = topology.semisync.as_ref().is_some_and(|x| x.enabled);
        match promoter.replicate_from(&s.address, &writer.address, true, semisync).await {
            Ok(()) => {
                step(shared, "rejoin", format!("former writer {} replicates from {}", s.name, writer.name));
                count(shared, "rejoin", "done");
                shared.promotions.forget_demoted(d);
                blocked.retain(|(b, _)| *b != d);
                run_hook(shared, "rejoin", &s.name, "replica");
                shared.topology.request_check();
            }
            Err(e) => {
                step(shared, "rejoin", format!("{} could not be rejoined: {e}", s.name));
                count(shared, "rejoin", "failed");
            }
        }
    }
}
