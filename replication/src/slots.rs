//! Server slots: which index each configured server has, across reloads.
//!
//! Everything in rwsplit names a server by its index (the topology, the pools, the metrics, a
//! session's read affinity, a leased connection). A reload must not shift those indexes under
//! running sessions, so indexes are never reused for another server: a server keeps its slot
//! while its name and address stay the same, a new one (or one whose address changed) gets a
//! new slot at the end, and a removed one keeps its slot, marked removed, so a statement still
//! running there finishes and its connection is then closed. Adding the same server back
//! (same name and address) revives its old slot. Pure: [`plan`] takes the slots in force and
//! the new config and says what the new slots are, or why the reload is refused.

use rwsplit_config::ServerConfig;
use std::fmt;

/// The most slots a process keeps: servers configured at once plus those removed by reloads.
/// A reload that would need more is refused (restart to start afresh). 64 also bounds the
/// per-session bitmaps indexed by server.
pub const MAX_SERVER_SLOTS: usize = 64;

/// One server slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSlot {
    /// The server's config (for a removed slot: as it was when removed).
    pub config: ServerConfig,
    /// No longer in the config.
    pub removed: bool,
}

impl ServerSlot {
    /// The slots of a config at start: one per server, in config order.
    pub fn initial(servers: &[ServerConfig]) -> Vec<ServerSlot> {
        servers.iter().map(|s| ServerSlot { config: s.clone(), removed: false }).collect()
    }
}

/// Why a reload's server list cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The config drops (or re-addresses) the server taking writes.
    WriterRemoved { name: String, address: String },
    /// More than [`MAX_SERVER_SLOTS`] slots would be needed.
    TooManySlots { needed: usize },
}

impl fmt::Display for SlotRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotRefusal::WriterRemoved { name, address } => write!(
                f,
                "servers: {name} ({address}) takes the writes and cannot be removed or re-addressed by a reload; \
                 switch over to another server first (rwsplit switchover)"
            ),
            SlotRefusal::TooManySlots { needed } => write!(
                f,
                "servers: this reload needs {needed} server slots (servers configured plus those removed since the \
                 start) and at most {MAX_SERVER_SLOTS} are kept; restart rwsplit to forget removed servers"
            ),
        }
    }
}

/// What a reload changes, per slot, for logs and for the parts that must act.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotChanges {
    /// Slots of servers new to this process (or re-addressed).
    pub added: Vec<usize>,
    /// Slots of servers the config no longer has.
    pub removed: Vec<usize>,
    /// Slots of removed servers the config has again.
    pub revived: Vec<usize>,
    /// Slots whose weight, drain or TLS setting changed.
    pub changed: Vec<usize>,
}

impl SlotChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.revived.is_empty() && self.changed.is_empty()
    }
}

/// The slots after a reload to `servers` (validated: names unique), given the slots in force
/// and the current writer's slot. The relative order of slots never changes.
pub fn plan(
    current: &[ServerSlot],
    writer: Option<usize>,
    servers: &[ServerConfig],
) -> Result<(Vec<ServerSlot>, SlotChanges), SlotRefusal> {
    let mut next: Vec<ServerSlot> = current.to_vec();
    let mut taken = vec![false; next.len()];
    let mut changes = SlotChanges::default();
    for server in servers {
        let same = next.iter().position(|s| s.config.name == server.name && s.config.address == server.address);
        match same {
            Some(i) => {
                let slot = &mut next[i];
                if slot.removed {
                    changes.revived.push(i);
                } else if slot.config != *server {
                    changes.changed.push(i);
                }
                slot.config = server.clone();
                slot.removed = false;
                taken[i] = true;
            }
            None => {
                changes.added.push(next.len());
                next.push(ServerSlot { config: server.clone(), removed: false });
                taken.push(true);
            }
        }
    }
    for (i, slot) in next.iter_mut().enumerate() {
        if !taken[i] && !slot.removed {
            if Some(i) == writer {
                return Err(SlotRefusal::WriterRemoved {
                    name: slot.config.name.clone(),
                    address: slot.config.address.clone(),
                });
            }
            slot.removed = true;
            changes.removed.push(i);
        }
    }
    if next.len() > MAX_SERVER_SLOTS {
        return Err(SlotRefusal::TooManySlots { needed: next.len() });
    }
    Ok((next, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, port: u16, weight: u32) -> ServerConfig {
        ServerConfig { name: name.into(), address: format!("127.0.0.1:{port}"), weight, ..Default::default() }
    }

    fn names(slots: &[ServerSlot]) -> Vec<(String, bool)> {
        slots.iter().map(|s| (s.config.name.clone(), s.removed)).collect()
    }

    #[test]
    fn unchanged_config_changes_nothing() {
        let servers = [server("m", 1, 1), server("r1", 2, 1)];
        let slots = ServerSlot::initial(&servers);
        let (next, changes) = plan(&slots, Some(0), &servers).unwrap();
        assert_eq!(next, slots);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn added_servers_are_appended_whatever_their_place_in_the_file() {
        let slots = ServerSlot::initial(&[server("m", 1, 1), server("r1", 2, 1)]);
        let (next, changes) =
            plan(&slots, Some(0), &[server("r2", 3, 1), server("m", 1, 1), server("r1", 2, 1)]).unwrap();
        assert_eq!(names(&next), [("m".into(), false), ("r1".into(), false), ("r2".into(), false)]);
        assert_eq!(changes.added, [2]);
    }

    #[test]
    fn removed_servers_keep_their_slot_and_come_back_to_it() {
        let slots = ServerSlot::initial(&[server("m", 1, 1), server("r1", 2, 1), server("r2", 3, 1)]);
        let (next, changes) = plan(&slots, Some(0), &[server("m", 1, 1), server("r2", 3, 1)]).unwrap();
        assert_eq!(names(&next), [("m".into(), false), ("r1".into(), true), ("r2".into(), false)]);
        assert_eq!(changes.removed, [1]);
        // Removed again: nothing new.
        let (again, changes) = plan(&next, Some(0), &[server("m", 1, 1), server("r2", 3, 1)]).unwrap();
        assert_eq!(again, next);
        assert!(changes.is_empty());
        // Back, with another weight: the same slot.
        let (back, changes) =
            plan(&next, Some(0), &[server("m", 1, 1), server("r1", 2, 5), server("r2", 3, 1)]).unwrap();
        assert_eq!(names(&back), names(&slots));
        assert_eq!(back[1].config.weight, 5);
        assert_eq!(changes.revived, [1]);
    }

    #[test]
    fn a_new_address_is_a_new_slot() {
        let slots = ServerSlot::initial(&[server("m", 1, 1), server("r1", 2, 1)]);
        let (next, changes) = plan(&slots, Some(0), &[server("m", 1, 1), server("r1", 9, 1)]).unwrap();
        assert_eq!(names(&next), [("m".into(), false), ("r1".into(), true), ("r1".into(), false)]);
        assert_eq!((changes.added, changes.removed), (vec![2], vec![1]));
    }

    #[test]
    fn weight_and_drain_changes_stay_in_place() {
        let slots = ServerSlot::initial(&[server("m", 1, 1), server("r1", 2, 1)]);
        let mut drained = server("r1", 2, 3);
        drained.drain = true;
        let (next, changes) = plan(&slots, Some(0), &[server("m", 1, 1), drained.clone()]).unwrap();
        assert_eq!(next[1].config, drained);
        assert_eq!(changes.changed, [1]);
    }

    #[test]
    fn the_writer_cannot_be_removed_or_moved() {
        let slots = ServerSlot::initial(&[server("m", 1, 1), server("r1", 2, 1)]);
        let refused = plan(&slots, Some(0), &[server("r1", 2, 1)]).unwrap_err();
        assert!(matches!(refused, SlotRefusal::WriterRemoved { ref name, .. } if name == "m"), "{refused:?}");
        assert!(refused.to_string().contains("switch over"), "{refused}");
        let moved = plan(&slots, Some(0), &[server("m", 7, 1), server("r1", 2, 1)]).unwrap_err();
        assert!(matches!(moved, SlotRefusal::WriterRemoved { .. }));
        // Without a known writer, any server may go.
        assert!(plan(&slots, None, &[server("r1", 2, 1)]).is_ok());
    }

    #[test]
    fn slots_are_bounded() {
        let mut slots = ServerSlot::initial(&[server("m", 1, 1)]);
        let mut refused = None;
        for port in 2..200u16 {
            match plan(&slots, Some(0), &[server("m", 1, 1), server("r", port, 1)]) {
                Ok((next, _)) => slots = next,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(slots.len(), MAX_SERVER_SLOTS);
        assert_eq!(refused, Some(SlotRefusal::TooManySlots { needed: MAX_SERVER_SLOTS + 1 }));
    }
}
