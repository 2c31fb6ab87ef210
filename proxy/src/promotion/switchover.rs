//! A planned switchover, lossless and invisible to clients:
//!
//! 1. choose the target ([`election::switchover_target`]) or refuse, changing nothing;
//! 2. hold new writes (they wait, up to `routing.writer_wait_ms`) and wait for the statements
//!    and transactions already on the writer to finish (up to `monitor.promotion_timeout_ms`;
//!    otherwise give up and release, nothing changed);
//! 3. `read_only=ON` on the old writer, read its last GTID, wait until the target applied it
//!    (otherwise `read_only=OFF` again and give up);
//! 4. promote the target; repoint the old writer and the other replicas to it (GTID,
//!    semi-sync replica side when semi-sync is on);
//! 5. wait until the monitor sees the new writer, then release the held writes to it.

use super::{count, run_hook, step, wait_for_writer, PromotionError};
use crate::runtime::Shared;
use rwsplit_replication::election;
use rwsplit_replication::Health;
use std::time::Duration;

const KIND: &str = "switchover";

/// What a finished switchover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub old_writer: String,
    pub new_writer: String,
    /// Servers now replicating from the new writer.
    pub repointed: Vec<String>,
    /// Servers that could not be repointed, with the reason (they need a person).
    pub not_repointed: Vec<(String, String)>,
    /// How long writes were held.
    pub held_ms: u128,
}

/// Runs a switchover to `to` (a server name) or to the most advanced usable replica.
pub async fn switchover(shared: &Shared, to: Option<&str>) -> Result<Report, PromotionError> {
    let result = run(shared, to).await;
    match &result {
        Ok(r) => {
            count(shared, KIND, "done");
            step(shared, KIND, format!("done: {} is the writer; writes were held {} ms", r.new_writer, r.held_ms));
        }
        Err(e) => {
            count(shared, KIND, e.outcome());
            step(shared, KIND, format!("not done: {e}"));
        }
    }
    result
}

async fn run(shared: &Shared, to: Option<&str>) -> Result<Report, PromotionError> {
    let _running = shared.promotions.start()?;
    let config = shared.config();
    let limit = Duration::from_millis(config.monitor.promotion_timeout_ms);
    let max_lag = config.monitor.switchover_max_lag_ms;
    let promoter = crate::backend::tls::promoter(&config);
    drop(config);

    let topology = shared.topology.snapshot();
    let target = election::switchover_target(&topology, to, max_lag)?;
    let old = topology.writer.ok_or(election::Refusal::NoWriter)?;
    let name = |i: usize| topology.servers.get(i).map(|s| s.name.clone()).unwrap_or_default();
    let address = |i: usize| topology.servers.get(i).map(|s| s.address.clone()).unwrap_or_default();
    let semisync = topology.semisync.as_ref().is_some_and(|s| s.enabled);
    let (old_name, old_addr, target_name, target_addr) = (name(old), address(old), name(target), address(target));

    step(shared, KIND, format!("{old_name} -> {target_name}: holding new writes"));
    let held_at = std::time::Instant::now();
    let hold = shared.writes.hold();

    // Statements already past the gate, and sessions with a transaction (or lock, …) open on
    // the writer, finish first.
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let open = open_on(shared, old);
        if open == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            drop(hold);
            return Err(PromotionError::Timeout {
                what: format!("{open} statement(s) or transaction(s) on {old_name} did not finish"),
                after: limit,
                rolled_back: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    step(shared, KIND, format!("nothing in flight on {old_name}; read_only=ON there"));
    let failed = |step: &'static str, server: &str, cause, rolled_back| PromotionError::Step {
        step,
        server: server.to_string(),
        cause,
        rolled_back,
    };
    if let Err(e) = promoter.set_read_only(&old_addr, true).await {
        let rolled_back = promoter.set_read_only(&old_addr, false).await.is_ok();
        return Err(failed("SET GLOBAL read_only=ON", &old_name, e, rolled_back));
    }
    let position = match promoter.binlog_position(&old_addr).await {
        Ok(p) => p,
        Err(e) => {
            let rolled_back = promoter.set_read_only(&old_addr, false).await.is_ok();
            return Err(failed("SELECT @@gtid_binlog_pos", &old_name, e, rolled_back));
        }
    };
    step(shared, KIND, format!("waiting for {target_name} to apply {position}"));
    if let Err(e) = promoter.wait_applied(&target_addr, &position, limit).await {
        let rolled_back = promoter.set_read_only(&old_addr, false).await.is_ok();
        return Err(failed("MASTER_GTID_WAIT", &target_name, e, rolled_back));
    }
    step(shared, KIND, format!("promoting {target_name}"));
    if let Err(e) = promoter.promote(&target_addr, semisync).await {
        // The target may be half promoted: the old writer takes writes again, a person looks
        // at the target (the alert and this error say so).
        let rolled_back = promoter.set_read_only(&old_addr, false).await.is_ok();
        return Err(failed("promote", &target_name, e, rolled_back));
    }
    let mut report = Report {
        old_writer: old_name.clone(),
        new_writer: target_name.clone(),
        repointed: Vec::new(),
        not_repointed: Vec::new(),
        held_ms: 0,
    };
    for (i, s) in topology.servers.iter().enumerate() {
        if i == target || (i != old && s.health != Health::Up) {
            continue;
        }
        match promoter.replicate_from(&s.address, &target_addr, i == old, semisync).await {
            Ok(()) => {
                step(shared, KIND, format!("{} replicates from {target_name}", s.name));
                report.repointed.push(s.name.clone());
            }
            Err(e) => {
                step(shared, KIND, format!("{} could not be repointed: {e}", s.name));
                report.not_repointed.push((s.name.clone(), e.to_string()));
            }
        }
    }
    if !wait_for_writer(shared, target, limit).await {
        step(shared, KIND, format!("the monitor does not see {target_name} as the writer yet; releasing writes"));
    }
    drop(hold);
    report.held_ms = held_at.elapsed().as_millis();
    run_hook(shared, "switchover", &target_name, "master");
    for r in &report.repointed {
        run_hook(shared, "switchover", r, "replica");
    }
    Ok(report)
}

/// Statements in flight to the writer plus sessions whose connection to `server` is tied to
/// them (transaction, lock, …).
fn open_on(shared: &Shared, server: usize) -> usize {
    let tied = shared.sessions.count(|s| s.pinned_on() == Some(server));
    shared.writes.in_flight() + tied
}
