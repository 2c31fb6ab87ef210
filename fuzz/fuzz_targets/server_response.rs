//! A server's response, split into chunks as the relay sees it, fed to the response tracker
//! for every command shape. It may reject, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rwsplit_proxy::protocol::frame::{check_chunk, HEADER};
use rwsplit_proxy::protocol::response::{Expect, ResponseTracker};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else { return };
    for expect in [Expect::Query, Expect::Prepare, Expect::FieldList, Expect::Fetch, Expect::Single] {
        let mut t = ResponseTracker::new(expect, flags & 1 == 1);
        let mut rest = stream;
        while let Some(c) = check_chunk(rest) {
            let body = &rest[HEADER..c.total()];
            if t.feed(c, &body[..body.len().min(64)]).is_err() {
                break;
            }
            rest = &rest[c.total()..];
        }
    }
});
