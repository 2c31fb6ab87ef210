//! COM_STMT_EXECUTE parsing and rewriting for any parameter count: no panic, and a rewrite
//! of a parsed packet always parses again with the same statement id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rwsplit_proxy::protocol::stmt::{parse_execute, rewrite_execute, stmt_id};

fuzz_target!(|data: &[u8]| {
    let Some((&params, payload)) = data.split_first() else { return };
    let params = u16::from(params);
    if let Some(head) = parse_execute(payload, params) {
        let types = vec![3u8; 2 * usize::from(params)];
        let out = rewrite_execute(payload, &head, 77, Some(&types));
        assert_eq!(stmt_id(&out), Some(77));
        assert!(parse_execute(&out, params).is_some());
    }
});
