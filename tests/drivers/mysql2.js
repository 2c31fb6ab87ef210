// node mysql2: the same scenario against the master directly and through rwsplit (default
// config); prints every step that differs and exits 1 if any does. Run by scripts/driver_check.sh.
const MASTER = Number(process.env.MASTER_PORT || 3307), PROXY = Number(process.env.PROXY_PORT || 8066);
const mysql = require('mysql2/promise');
async function scenario(port) {
  const out = [];
  const c = await mysql.createConnection({host: '127.0.0.1', port, user: 'app', password: 'app', database: 'nt', multipleStatements: true});
  const rec = (label, v) => out.push([label, JSON.stringify(v)]);
  try {
    await c.query('DROP PROCEDURE IF EXISTS p');
    await c.query('CREATE PROCEDURE p(IN a INT, OUT o BIGINT) SET o = a * 2');
    await c.query('CALL p(21, @out)');
    const [r1, f1] = await c.query('SELECT @out');
    rec('SELECT @out value', r1); rec('SELECT @out type', f1.map(f => [f.name, f.columnType, f.columnLength, f.flags]));
    await c.query('CREATE TABLE IF NOT EXISTS t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, j JSON)');
    const [ins] = await c.query('INSERT INTO t (v, j) VALUES (1, \'{"a":1}\'), (2, \'[]\')');
    rec('insert ok', [ins.affectedRows, ins.warningStatus]);
    const [u] = await c.query('UPDATE t SET v = v + 1');
    const [rc] = await c.query('SELECT ROW_COUNT() AS rc');
    rec('update/rowcount', [u.affectedRows, u.changedRows, rc]);
    const [rows, f2] = await c.query('SELECT id, v, j FROM t ORDER BY id');
    rec('rows', rows.map(r => [r.v, r.j]));
    rec('meta', f2.map(f => [f.name, f.columnType, f.columnLength, f.flags, f.characterSet]));
    const [ms] = await c.query('SELECT 1 AS a; SELECT 2 AS b');
    rec('multi', ms);
    const [pr] = await c.execute('SELECT v FROM t WHERE id = ?', [1]);
    rec('prepared', pr);
    const [[cid]] = await c.query('SELECT CONNECTION_ID() AS id');
    rec('connection id = threadId', cid.id === c.threadId);
    const [w] = await c.query('SELECT CAST(\'x\' AS SIGNED) AS n');
    const [sw] = await c.query('SHOW WARNINGS');
    rec('warnings', [w, sw]);
    try { await c.query('INSERT INTO t (id) VALUES (1)'); } catch (e) { rec('dup error', [e.errno, e.sqlState, e.sqlMessage]); }
    // KILL QUERY from a second connection during SLEEP(5)
    const k = await mysql.createConnection({host: '127.0.0.1', port, user: 'app', password: 'app'});
    const started = Date.now();
    const sleeping = c.query('SELECT SLEEP(5) AS s');
    await new Promise(r => setTimeout(r, 300));
    await k.query('KILL QUERY ' + c.threadId);
    let s; try { [s] = await sleeping; } catch (e) { s = e.errno; }
    rec('killed sleep result', s); rec('killed within 1 s', Date.now() - started < 1300);
    await k.end();
  } finally { await c.end(); }
  return out;
}
(async () => {
  const admin = await mysql.createConnection({host: '127.0.0.1', port: MASTER, user: 'root'});
  await admin.query('DROP DATABASE IF EXISTS nt'); await admin.query('CREATE DATABASE nt');
  await admin.end();
  const a = await scenario(MASTER);
  const admin2 = await mysql.createConnection({host: '127.0.0.1', port: MASTER, user: 'root'});
  await admin2.query('DROP DATABASE IF EXISTS nt'); await admin2.query('CREATE DATABASE nt'); await admin2.end();
  await new Promise(r => setTimeout(r, 1500));
  const b = await scenario(PROXY);
  let diff = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [la, va] = a[i] || ['-', '-']; const [lb, vb] = b[i] || ['-', '-'];
    if (va !== vb) { diff++; console.log('DIFF', la, '\n  master :', va, '\n  rwsplit:', vb); }
  }
  console.log(`mysql2: ${a.length} steps, ${diff} differ`);
  process.exit(diff === 0 ? 0 : 1);
})().catch(e => { console.error(e); process.exit(1); });
