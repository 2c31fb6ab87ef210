//! Statement text from clients goes through the lexer on every query: it must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let _ = rwsplit_proxy::classifier::scan(&sql);
});
