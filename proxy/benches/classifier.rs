//! What the classifier's hot path costs per statement, against a full sqlparser parse (MySQL
//! dialect) of the same statements: a point select, a 20-column insert, a join, and a long
//! statement. Plain `Instant` loops with `black_box`; prints ns/statement and the ratio.
//!
//! `cargo bench -p rwsplit-proxy --bench classifier` measures for about a second per figure;
//! run as a test (`cargo test --benches`) it only checks that everything runs.

use rwsplit_proxy::classifier::{classify, scan, SessionView};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn statements() -> Vec<(&'static str, String)> {
    let columns: Vec<String> = (1..=20).map(|i| format!("c{i}")).collect();
    let values: Vec<String> = (1..=20)
        .map(|i| if i % 3 == 0 { format!("'value {i} with some text'") } else { (i * 7919).to_string() })
        .collect();
    let insert = format!("INSERT INTO orders ({}) VALUES ({})", columns.join(", "), values.join(", "));
    let join = "SELECT o.id, c.name, SUM(l.qty * l.price) AS total \
                FROM orders o JOIN customers c ON c.id = o.customer_id \
                LEFT JOIN order_lines l ON l.order_id = o.id \
                WHERE o.created_at >= '2024-01-01' AND c.country IN ('DE', 'FR', 'IT') \
                GROUP BY o.id, c.name ORDER BY total DESC LIMIT 50"
        .to_string();
    let ids: Vec<String> = (0..600).map(|i| (i * 31 + 7).to_string()).collect();
    let long = format!(
        "/* app:report */ SELECT id, name, email, COALESCE(phone, '') AS phone, DATE_FORMAT(created_at, '%Y-%m-%d') \
         FROM users WHERE status = 'active' AND id IN ({}) AND name NOT LIKE '%test%' ORDER BY created_at DESC",
        ids.join(", ")
    );
    vec![
        ("point select", "SELECT id, name, email FROM users WHERE id = 42".to_string()),
        ("20-column insert", insert),
        ("join", join),
        ("long select", long),
    ]
}

/// Calls `f` for about `budget` and returns nanoseconds per call.
fn ns_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..16 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u64;
    let mut batch = 16u64;
    loop {
        for _ in 0..batch {
            f();
        }
        calls += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return elapsed.as_nanos() as f64 / calls as f64;
        }
        batch = (batch * 2).min(1 << 14);
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = if measuring { Duration::from_millis(1000) } else { Duration::from_millis(5) };
    let no_temp = HashSet::new();
    let session = SessionView {
        in_transaction: false,
        read_only_transaction: false,
        autocommit: true,
        serializable: false,
        temp_tables: &no_temp,
    };
    println!(
        "{:<18} {:>6} {:>12} {:>14} {:>15} {:>8}",
        "statement", "bytes", "scan ns", "classify ns", "sqlparser ns", "ratio"
    );
    for (name, sql) in statements() {
        // Both sides must accept the statement, or the comparison means nothing.
        assert!(Parser::parse_sql(&MySqlDialect {}, &sql).is_ok(), "sqlparser rejects {name}");
        let scan_ns = ns_per_call(budget, || {
            black_box(scan(black_box(&sql)));
        });
        let classify_ns = ns_per_call(budget, || {
            black_box(classify(black_box(&sql), &session));
        });
        let parse_ns = ns_per_call(budget, || {
            let _ = black_box(Parser::parse_sql(&MySqlDialect {}, black_box(&sql)));
        });
        println!(
            "{:<18} {:>6} {:>12.0} {:>14.0} {:>15.0} {:>7.1}x",
            name,
            sql.len(),
            scan_ns,
            classify_ns,
            parse_ns,
            parse_ns / scan_ns
        );
    }
}
