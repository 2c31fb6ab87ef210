//! The gate statements for the writer pass: while a switchover holds writes, a statement that
//! would start new work on the writer waits (see `session::execute`), and the switchover waits
//! for the statements that already passed to finish.
//!
//! No lost race: a statement first counts itself as passing, then looks at the hold (and backs
//! out if it is on); a switchover first turns the hold on, then waits for the count to reach
//! zero. With sequentially consistent operations on both sides, either the statement sees the
//! hold or the switchover sees the statement.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Writes held or not, and the statements on their way to the writer.
#[derive(Debug)]
pub struct WriteGate {
    held: watch::Sender<bool>,
    passing: Arc<AtomicUsize>,
}

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate { held: watch::channel(false).0, passing: Arc::new(AtomicUsize::new(0)) }
    }
}

/// A statement that passed the gate; it counts as in flight until dropped.
#[derive(Debug)]
pub struct WritePass(Arc<AtomicUsize>);

impl Drop for WritePass {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds writes until dropped.
#[derive(Debug)]
pub struct Hold<'a>(&'a WriteGate);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.held.send_replace(false);
    }
}

impl WriteGate {
    /// A pass for a statement to the writer; `None` while writes are held, unless the
    /// statement continues work already open there (`continuing`: a transaction, a lock),
    /// which must be able to finish.
    pub fn try_pass(&self, continuing: bool) -> Option<WritePass> {
        self.passing.fetch_add(1, Ordering::SeqCst);
        let pass = WritePass(self.passing.clone());
        if continuing || !*self.held.borrow() {
            return Some(pass);
        }
        drop(pass);
        None
    }

    /// Holds writes (a switchover). Only one holder at a time is expected (promotions run
    /// one at a time).
    pub fn hold(&self) -> Hold<'_> {
        self.held.send_replace(true);
        Hold(self)
    }

    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Statements that passed and have not finished.
    pub fn in_flight(&self) -> usize {
        self.passing.load(Ordering::SeqCst)
    }

    /// Sees every change of the hold after this call.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.held.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_stops_new_work_but_not_open_work() {
        let gate = WriteGate::default();
        let before = gate.try_pass(false).expect("not held");
        assert_eq!(gate.in_flight(), 1);
        {
            let _hold = gate.hold();
            assert!(gate.is_held());
            assert!(gate.try_pass(false).is_none(), "new work waits");
            assert_eq!(gate.in_flight(), 1, "a refused pass does not count");
            let open = gate.try_pass(true).expect("a transaction finishes");
            assert_eq!(gate.in_flight(), 2);
            drop(open);
        }
        assert!(!gate.is_held(), "released when the hold is dropped");
        drop(before);
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.try_pass(false).is_some());
    }

    #[test]
    fn waiters_see_the_release() {
        let gate = WriteGate::default();
        let mut rx = gate.subscribe();
        let hold = gate.hold();
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        drop(hold);
        assert!(rx.has_changed().unwrap());
        assert!(!*rx.borrow());
    }
}
