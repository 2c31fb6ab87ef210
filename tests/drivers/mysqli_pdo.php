<?php
// PHP mysqli and PDO (mysqlnd): the same scenario on the master directly and through rwsplit
// (default config); prints every step that differs and exits 1 if any does. Run by
// scripts/driver_check.sh.
$MASTER = (int) (getenv('MASTER_PORT') ?: 3307);
$PROXY = (int) (getenv('PROXY_PORT') ?: 8066);
mysqli_report(MYSQLI_REPORT_OFF);
function scenario($port) {
    $out = [];
    $m = new mysqli('127.0.0.1', 'app', 'app', 'nt', $port);
    $m->query('DROP PROCEDURE IF EXISTS p2');
    $m->query('CREATE PROCEDURE p2(IN a INT, OUT o BIGINT) SET o = a * 3');
    // multi_query: mysqli switches multi-statements on with COM_SET_OPTION.
    $ok = $m->multi_query('SELECT 1 AS a; SELECT 2 AS b');
    $res = [];
    if ($ok) { do { if ($r = $m->store_result()) { $res[] = $r->fetch_all(); $r->free(); } } while ($m->more_results() && $m->next_result()); }
    $out[] = ['multi_query', $ok, $res, $m->errno];
    $m->query('CALL p2(7, @o)');
    $r = $m->query('SELECT @o');
    $f = $r->fetch_field();
    $out[] = ['@o', $r->fetch_row(), $f->type, $f->length];
    $m->query('CREATE TABLE IF NOT EXISTS t2 (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    $m->query('INSERT INTO t2 (v) VALUES (1),(2),(3)');
    $out[] = ['insert_id', $m->insert_id, $m->affected_rows];
    $m->query('UPDATE t2 SET v = v + 1 WHERE v > 1');
    $out[] = ['update', $m->affected_rows, $m->info];
    $r = $m->query('SELECT ROW_COUNT()');
    $out[] = ['row_count', $r->fetch_row()];
    $r = $m->query('SELECT CONNECTION_ID()');
    $out[] = ['connection id = thread_id', $r->fetch_row()[0] == $m->thread_id];
    $m->query("SELECT CAST('x' AS SIGNED)");
    $out[] = ['warning_count', $m->warning_count];
    $r = $m->query('SHOW WARNINGS');
    $out[] = ['show warnings', $r->fetch_all()];
    $m->query('START TRANSACTION READ ONLY');
    $m->query('INSERT INTO t2 (v) VALUES (9)');
    $out[] = ['ro trx write', $m->errno, $m->sqlstate, $m->error];
    $m->query('ROLLBACK');
    // kill(): COM_PROCESS_KILL of another connection of the same user.
    $k = new mysqli('127.0.0.1', 'app', 'app', 'nt', $port);
    $out[] = ['kill', $m->kill($k->thread_id)];
    $out[] = ['killed connection answers', @$k->query('SELECT 1') !== false];
    $pdo = new PDO("mysql:host=127.0.0.1;port=$port;dbname=nt", 'app', 'app', [PDO::ATTR_EMULATE_PREPARES => false]);
    $pdo->exec('CALL p2(5, @x)');
    $s = $pdo->query('SELECT @x AS x');
    $out[] = ['pdo @x', $s->fetchAll(PDO::FETCH_ASSOC), $s->getColumnMeta(0)['native_type'] ?? null];
    $st = $pdo->prepare('SELECT v FROM t2 WHERE id = ?'); $st->execute([2]);
    $out[] = ['pdo prepared', $st->fetchAll(PDO::FETCH_NUM)];
    return $out;
}
function fresh($master) { $a = new mysqli('127.0.0.1', 'root', '', '', $master); $a->query('DROP DATABASE IF EXISTS nt'); $a->query('CREATE DATABASE nt'); }
fresh($MASTER); $a = scenario($MASTER); fresh($MASTER); sleep(1); $b = scenario($PROXY);
$diff = 0;
foreach ($a as $i => $step) { if (json_encode($step) !== json_encode($b[$i])) { $diff++; echo "DIFF ", json_encode($step), "\n   vs ", json_encode($b[$i]), "\n"; } }
echo "mysqli/PDO: ", count($a), " steps, $diff differ\n";
exit($diff === 0 ? 0 : 1);
