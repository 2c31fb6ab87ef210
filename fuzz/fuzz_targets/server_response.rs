//! Everything a server sends that rwsplit reads: its greeting, a response split into chunks as
//! the relay sees it (fed to the response tracker for every command shape), and the session
//! state information of an OK packet. Any of them may be rejected; none may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rwsplit_proxy::protocol::frame::{check_chunk, HEADER};
use rwsplit_proxy::protocol::response::{Expect, ResponseTracker};
use rwsplit_proxy::protocol::session_track::ok_state_changes;
use rwsplit_proxy::protocol::{offered_capabilities, CapabilityFlags};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else { return };
    for expect in [Expect::Query, Expect::Prepare, Expect::FieldList, Expect::Fetch, Expect::Single] {
        let mut t = ResponseTracker::new(expect, flags & 1 == 1).with_cached_metadata(flags & 2 == 2);
        let mut rest = stream;
        while let Some(c) = check_chunk(rest) {
            let body = &rest[HEADER..c.total()];
            if t.feed(c, &body[..body.len().min(64)]).is_err() {
                break;
            }
            rest = &rest[c.total()..];
        }
    }
    let _ = ok_state_changes(stream, offered_capabilities() | CapabilityFlags::CLIENT_SESSION_TRACK);
    // What a client without session tracking gets instead of an OK: never longer, never a panic.
    if let Some(plain) = rwsplit_proxy::protocol::packets::ok_without_session_state(stream) {
        assert!(plain.len() <= stream.len());
    }
    let _ = rwsplit_proxy::protocol::handshake::parse_greeting(stream);
});
