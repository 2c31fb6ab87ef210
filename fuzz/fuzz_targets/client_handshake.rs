//! Everything a client sends before it is authenticated: the handshake response and a
//! COM_CHANGE_USER. Neither parser may panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rwsplit_proxy::protocol::handshake::{parse_change_user, parse_handshake_response};
use rwsplit_proxy::protocol::{offered_capabilities, offered_mariadb_capabilities};

fuzz_target!(|data: &[u8]| {
    let _ = parse_handshake_response(data, offered_capabilities(), offered_mariadb_capabilities());
    let _ = parse_change_user(data);
});
