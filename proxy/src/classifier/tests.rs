//! The classifier's acceptance tests: the routing table, the effects table, the differential
//! test against sqlparser and the property tests.

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::OnceLock;

/// Session fixtures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fx {
    /// Autocommit, no transaction, no temporary tables.
    Idle,
    /// BEGIN was run.
    InTx,
    /// START TRANSACTION READ ONLY was run.
    RoTx,
    /// SET autocommit = 0.
    AcOff,
    /// Session isolation SERIALIZABLE.
    Ser,
    /// Idle, with temporary tables `tmp` and `db2.t2`.
    Temp,
}

fn no_tables() -> &'static HashSet<String> {
    static EMPTY: OnceLock<HashSet<String>> = OnceLock::new();
    EMPTY.get_or_init(HashSet::new)
}

fn temp_tables() -> &'static HashSet<String> {
    static TEMP: OnceLock<HashSet<String>> = OnceLock::new();
    TEMP.get_or_init(|| ["tmp", "db2.t2"].iter().map(|s| s.to_string()).collect())
}

fn view(fx: Fx) -> SessionView<'static> {
    let idle = SessionView {
        in_transaction: false,
        read_only_transaction: false,
        autocommit: true,
        serializable: false,
        temp_tables: no_tables(),
    };
    match fx {
        Fx::Idle => idle,
        Fx::InTx => SessionView { in_transaction: true, ..idle },
        Fx::RoTx => SessionView { in_transaction: true, read_only_transaction: true, ..idle },
        Fx::AcOff => SessionView { autocommit: false, ..idle },
        Fx::Ser => SessionView { serializable: true, ..idle },
        Fx::Temp => SessionView { temp_tables: temp_tables(), ..idle },
    }
}

use Fx::*;
use Reason::*;
use Route::{Master as M, Previous as P, Replica as R};

/// (statement, session, expected route, expected reason)
const ROUTES: &[(&str, Fx, Route, Reason)] = &[
    // Plain reads, in many spellings.
    ("SELECT 1", Idle, R, Read),
    ("select * from users where id = 1", Idle, R, Read),
    ("SeLeCt a FrOm t", Idle, R, Read),
    ("  \n\t SELECT 1", Idle, R, Read),
    ("/* leading comment */ SELECT 1", Idle, R, Read),
    ("SELECT /* inline */ a -- trailing\n FROM t", Idle, R, Read),
    ("# hash comment\nSELECT 1", Idle, R, Read),
    ("select\t*\nfrom\tt\nwhere\ta=1", Idle, R, Read),
    ("SELECT 'FOR UPDATE'", Idle, R, Read),
    ("SELECT \"GET_LOCK(\"", Idle, R, Read),
    ("SELECT 'a;b' AS x", Idle, R, Read),
    ("SELECT `select`, `for update` FROM `t`", Idle, R, Read),
    ("SELECT 'it''s', \"q\\\"q\", 'back\\\\slash'", Idle, R, Read),
    ("SELECT * FROM t WHERE a LIKE '%FOR UPDATE%' AND b = \"LOCK IN SHARE MODE\"", Idle, R, Read),
    ("SELECT `GET_LOCK` FROM t", Idle, R, Read),
    ("SELECT get_lock FROM t", Idle, R, Read),
    ("SELECT * FROM `for` WHERE `update` = 1", Idle, R, Read),
    ("SELECT * FROM t WHERE a = 'x' -- comment with ; DELETE", Idle, R, Read),
    ("SELECT 1 # ; DELETE FROM t", Idle, R, Read),
    ("SELECT 1 /* ; DELETE FROM t */", Idle, R, Read),
    ("SELECT 1 /* unterminated", Idle, R, Read),
    ("SELECT 'unterminated", Idle, R, Read),
    ("(SELECT 1) UNION (SELECT 2)", Idle, R, Read),
    ("((SELECT a FROM t))", Idle, R, Read),
    ("SELECT 1;", Idle, R, Read),
    ("SELECT 1 ;  -- end\n", Idle, R, Read),
    ("SELECT 'x;y'; ", Idle, R, Read),
    ("SELECT 1--1", Idle, R, Read),
    ("SELECT 1 FROM DUAL WHERE 1 = 1", Idle, R, Read),
    ("SELECT x'4142', b'01', N'abc', _utf8mb4'x' COLLATE utf8mb4_bin", Idle, R, Read),
    ("SELECT 5 DIV (2), 7 MOD (3), MOD(7, 2)", Idle, R, Read),
    ("SELECT * FROM t WHERE a = ANY (SELECT b FROM u)", Idle, R, Read),
    ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", Idle, R, Read),
    ("/*!40101 SELECT 1 */", Idle, R, Read),
    ("SELECT /*!40001 SQL_NO_CACHE */ * FROM t", Idle, R, Read),
    ("SHOW TABLES", Idle, R, Read),
    ("SHOW FULL COLUMNS FROM t", Idle, R, Read),
    ("show create table t", Idle, R, Read),
    ("SHOW GLOBAL STATUS LIKE 'Threads%'", Idle, R, Read),
    ("SHOW VARIABLES", Idle, R, Read),
    ("SHOW ENGINE INNODB STATUS", Idle, R, Read),
    ("DESCRIBE t", Idle, R, Read),
    ("DESC t", Idle, R, Read),
    ("EXPLAIN SELECT * FROM t", Idle, R, Read),
    ("EXPLAIN FORMAT=JSON SELECT 1", Idle, R, Read),
    ("EXPLAIN UPDATE t SET a = 1", Idle, R, Read),
    ("EXPLAIN DELETE FROM t", Idle, R, Read),
    ("DESCRIBE INSERT INTO t VALUES (1)", Idle, R, Read),
    ("EXPLAIN INSERT INTO t (a, b) VALUES (1, 2)", Idle, R, Read),
    ("EXPLAIN REPLACE INTO db.t (a) SELECT a FROM u", Idle, R, Read),
    ("EXPLAIN ANALYZE SELECT * FROM t", Idle, R, Read),
    ("EXPLAIN ANALYZE UPDATE t SET a = 1", Idle, M, Write),
    ("explain analyze delete t1 from t1 join t2 on t1.id = t2.id", Idle, M, Write),
    ("ANALYZE SELECT * FROM t", Idle, R, Read),
    ("ANALYZE FORMAT=JSON DELETE FROM t WHERE a = 1", Idle, M, Write),
    ("ANALYZE TABLE t", Idle, M, Admin),
    // MySQL 8: CTEs, window functions, TABLE, VALUES.
    ("WITH c AS (SELECT 1 AS x) SELECT x FROM c", Idle, R, Read),
    ("WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", Idle, R, Read),
    ("WITH c AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM c)", Idle, M, Write),
    ("WITH c AS (SELECT 1) UPDATE t SET a = 1", Idle, M, Write),
    ("WITH c AS (SELECT 1) (SELECT * FROM c)", Idle, R, Read),
    ("SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t", Idle, R, Read),
    ("SELECT SUM(x) OVER w, LAG(x, 1) OVER w FROM t WINDOW w AS (ORDER BY y)", Idle, R, Read),
    ("TABLE t", Idle, R, Read),
    ("VALUES ROW(1, 2), ROW(3, 4)", Idle, R, Read),
    ("HELP 'SELECT'", Idle, R, Read),
    ("DO 1 + 1", Idle, R, Read),
    ("DO SLEEP(1)", Idle, R, Read),
    ("SELECT SLEEP(0.1)", Idle, R, Read),
    // Built-ins and keywords before `(` are not user functions.
    ("SELECT COUNT(*), CONCAT(a, b), COALESCE(c, 0), IFNULL(d, 1), DATE_FORMAT(NOW(), '%Y') FROM t", Idle, R, Read),
    ("SELECT JSON_EXTRACT(doc, '$.a'), JSON_UNQUOTE(JSON_EXTRACT(doc, '$.b')) FROM t", Idle, R, Read),
    ("SELECT CAST(a AS DECIMAL(10,2)), CONVERT(b, CHAR(10)), CONVERT(c USING utf8mb4) FROM t", Idle, R, Read),
    ("SELECT * FROM t WHERE a IN (1, 2) AND EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", Idle, R, Read),
    ("SELECT * FROM t1 JOIN t2 USING (id) LEFT JOIN t3 ON (t3.a = t1.a)", Idle, R, Read),
    ("SELECT * FROM (SELECT 1, 2) AS dt (a, b)", Idle, R, Read),
    ("SELECT * FROM t FORCE INDEX (idx_a) WHERE a > 1", Idle, R, Read),
    ("SELECT * FROM t PARTITION (p0)", Idle, R, Read),
    ("SELECT * FROM JSON_TABLE('[1,2]', '$[*]' COLUMNS (x INT PATH '$')) AS jt", Idle, R, Read),
    ("SELECT a FROM t WHERE MATCH (title) AGAINST ('x' IN BOOLEAN MODE)", Idle, R, Read),
    ("SELECT a FROM t GROUP BY a WITH ROLLUP", Idle, R, Read),
    ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", Idle, R, Read),
    ("SELECT CONNECTION_ID(), VERSION(), DATABASE(), UUID()", Idle, R, Read),
    ("SELECT ST_Distance(POINT(1, 2), POINT(3, 4)), REGEXP_REPLACE(a, 'x', 'y') FROM t", Idle, R, Read),
    ("SELECT @@version, @@session.sql_mode", Idle, R, Read),
    ("SELECT @x", Idle, R, Read),
    ("SELECT @x = 1", Idle, R, Read),
    ("SELECT * FROM nextval", Idle, R, Read),
    ("SET STATEMENT max_statement_time = 10 FOR SELECT * FROM t", Idle, R, Read),
    // Master-only answers.
    ("SHOW SLAVE STATUS", Idle, M, MasterStatus),
    ("SHOW REPLICA STATUS", Idle, M, MasterStatus),
    ("SHOW ALL SLAVES STATUS", Idle, M, MasterStatus),
    ("SHOW MASTER STATUS", Idle, M, MasterStatus),
    ("SHOW BINLOG STATUS", Idle, M, MasterStatus),
    ("SHOW BINARY LOGS", Idle, M, MasterStatus),
    ("show full processlist", Idle, M, MasterStatus),
    ("EXPLAIN FOR CONNECTION 12", Idle, M, MasterStatus),
    // Locking reads.
    ("SELECT * FROM t FOR UPDATE", Idle, M, LockingRead),
    ("SELECT * FROM t WHERE id = 1 FOR SHARE", Idle, M, LockingRead),
    ("SELECT * FROM t FOR SHARE SKIP LOCKED", Idle, M, LockingRead),
    ("SELECT * FROM t FOR UPDATE NOWAIT", Idle, M, LockingRead),
    ("SELECT * FROM t FOR UPDATE WAIT 5", Idle, M, LockingRead),
    ("SELECT * FROM t LOCK IN SHARE MODE", Idle, M, LockingRead),
    ("select * from t for update of t", Idle, M, LockingRead),
    ("SELECT * FROM (SELECT * FROM t FOR UPDATE) x", Idle, M, LockingRead),
    ("SELECT * FROM t FOR/* comment */UPDATE", Idle, M, LockingRead),
    // Functions with side effects or master-only state.
    ("SELECT GET_LOCK('job', 10)", Idle, M, LockFunction),
    ("SELECT RELEASE_LOCK('job')", Idle, M, LockFunction),
    ("SELECT RELEASE_ALL_LOCKS()", Idle, M, LockFunction),
    ("SELECT release_all_locks ()", Idle, M, LockFunction),
    ("SELECT 'release_all_locks'", Idle, R, Read),
    ("SELECT /* release_all_locks() */ 1", Idle, R, Read),
    ("SELECT IS_USED_LOCK('job')", Idle, M, LockFunction),
    ("select is_free_lock ('job')", Idle, M, LockFunction),
    ("DO GET_LOCK('x', 0)", Idle, M, LockFunction),
    ("SELECT LAST_INSERT_ID()", Idle, M, LastInsertId),
    ("SELECT last_insert_id(5)", Idle, M, LastInsertId),
    ("select last_insert_id ( )", Idle, M, LastInsertId),
    ("SELECT * FROM t WHERE id = LAST_INSERT_ID()", Idle, M, LastInsertId),
    ("SELECT LAST_INSERT_ID(), ROW_COUNT()", Idle, M, LastInsertId),
    ("SELECT @@last_insert_id", Idle, M, LastInsertId),
    ("SELECT @@IDENTITY", Idle, M, LastInsertId),
    ("SELECT @x := 1", Idle, M, UserVariableAssign),
    ("SELECT @rn := @rn + 1 AS rn, a FROM t", Idle, M, UserVariableAssign),
    ("SELECT a INTO @x FROM t LIMIT 1", Idle, M, SelectInto),
    ("SELECT a FROM t LIMIT 1 INTO @x", Idle, M, SelectInto),
    ("SELECT * INTO OUTFILE '/tmp/t.csv' FROM t", Idle, M, SelectInto),
    ("SELECT a INTO DUMPFILE '/tmp/a' FROM t", Idle, M, SelectInto),
    // MariaDB sequences.
    ("SELECT NEXT VALUE FOR seq1", Idle, M, Sequence),
    ("SELECT NEXTVAL(seq1)", Idle, M, Sequence),
    ("SELECT LASTVAL(seq1)", Idle, M, Sequence),
    ("SELECT SETVAL(seq1, 100)", Idle, M, Sequence),
    ("SELECT PREVIOUS VALUE FOR seq1", Idle, M, Sequence),
    ("SELECT seq1.nextval", Idle, M, Sequence),
    // User-defined functions.
    ("SELECT myfunc(1)", Idle, M, UserFunction),
    ("SELECT calc_tax (price) FROM orders", Idle, M, UserFunction),
    ("SELECT db.concat('a')", Idle, M, UserFunction),
    ("SELECT `my func`(1)", Idle, M, UserFunction),
    ("SELECT sys.format_bytes(1024)", Idle, M, UserFunction),
    ("SELECT * FROM t WHERE a = f(1)", Idle, M, UserFunction),
    ("DO myproc_cleanup()", Idle, M, UserFunction),
    ("SELECT 1 /*M!100000 , myfunc() */", Idle, M, UserFunction),
    // Answers that belong to the previous statement's connection.
    ("SELECT FOUND_ROWS()", Idle, P, FollowsPrevious),
    ("SELECT ROW_COUNT()", Idle, P, FollowsPrevious),
    ("SHOW WARNINGS", Idle, P, FollowsPrevious),
    ("SHOW ERRORS LIMIT 1", Idle, P, FollowsPrevious),
    ("SHOW COUNT(*) WARNINGS", Idle, P, FollowsPrevious),
    ("SELECT @@warning_count", Idle, P, FollowsPrevious),
    ("SELECT @@session.error_count", Idle, P, FollowsPrevious),
    ("SELECT @@error_count", Idle, P, FollowsPrevious),
    ("SHOW ERRORS", Idle, P, FollowsPrevious),
    ("SHOW COUNT(*) ERRORS", Idle, P, FollowsPrevious),
    ("show count ( * ) warnings", Idle, P, FollowsPrevious),
    ("SHOW WARNINGS LIMIT 2, 5", Idle, P, FollowsPrevious),
    ("GET CURRENT DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT", Idle, P, FollowsPrevious),
    ("GET STACKED DIAGNOSTICS @n = NUMBER", Idle, P, FollowsPrevious),
    ("select row_count()", Idle, P, FollowsPrevious),
    ("SELECT found_rows ( )", Idle, P, FollowsPrevious),
    ("GET DIAGNOSTICS @n = NUMBER", Idle, P, FollowsPrevious),
    ("SHOW PROFILES", Idle, P, FollowsPrevious),
    // Writes.
    ("INSERT INTO t (a, b) VALUES (1, 2)", Idle, M, Write),
    ("insert into t values (1), (2)", Idle, M, Write),
    ("INSERT INTO t SELECT * FROM u", Idle, M, Write),
    ("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)", Idle, M, Write),
    ("INSERT INTO t (a) VALUES (1) RETURNING id", Idle, M, Write),
    ("DELETE FROM t WHERE id = 1 RETURNING *", Idle, M, Write),
    ("UPDATE t SET a = 'SELECT' WHERE id = 1", Idle, M, Write),
    ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", Idle, M, Write),
    ("REPLACE INTO t VALUES (1)", Idle, M, Write),
    ("LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t", Idle, M, Write),
    ("LOAD XML INFILE 'x.xml' INTO TABLE t", Idle, M, Write),
    ("/* SELECT */ UPDATE t SET a = 1", Idle, M, Write),
    ("SET STATEMENT max_statement_time = 10 FOR UPDATE t SET a = 1", Idle, M, Write),
    ("/*!99999 SELECT */ DELETE FROM t", Idle, M, Write),
    ("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", Idle, M, Write),
    ("IF 1 = 1 THEN SELECT 1; END IF", Idle, M, Write),
    // DDL and account management.
    ("CREATE TABLE t (id INT PRIMARY KEY)", Idle, M, Ddl),
    ("create table t2 as select * from t", Idle, M, Ddl),
    ("ALTER TABLE t ADD COLUMN c INT", Idle, M, Ddl),
    ("DROP TABLE IF EXISTS t", Idle, M, Ddl),
    ("RENAME TABLE a TO b", Idle, M, Ddl),
    ("TRUNCATE TABLE t", Idle, M, Ddl),
    ("TRUNCATE t", Idle, M, Ddl),
    ("GRANT SELECT ON db.* TO 'u'@'%'", Idle, M, Ddl),
    ("REVOKE ALL ON *.* FROM 'u'@'%'", Idle, M, Ddl),
    ("CREATE USER 'u'@'%' IDENTIFIED BY 'p'", Idle, M, Ddl),
    ("SET PASSWORD FOR 'u'@'%' = 'x'", Idle, M, Ddl),
    ("CREATE SEQUENCE s START WITH 1", Idle, M, Ddl),
    ("CREATE TEMPORARY TABLE tmp (a INT)", Idle, M, Ddl),
    ("CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", Idle, M, Ddl),
    ("CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1", Idle, M, Ddl),
    ("/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`root`@`%` SQL SECURITY DEFINER */ /*!50001 VIEW v AS SELECT 1 */", Idle, M, Ddl),
    ("CALL p(1, @out)", Idle, M, Call),
    ("call db.proc()", Idle, M, Call),
    // Administration.
    ("FLUSH TABLES", Idle, M, Admin),
    ("FLUSH TABLES WITH READ LOCK", Idle, M, Admin),
    ("KILL 42", Idle, M, Admin),
    ("KILL QUERY 42", Idle, M, Admin),
    ("OPTIMIZE TABLE t", Idle, M, Admin),
    ("SET GLOBAL max_connections = 500", Idle, M, Admin),
    ("SET @@global.read_only = 1", Idle, M, Admin),
    ("SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE", Idle, M, Admin),
    ("START SLAVE", Idle, M, Admin),
    ("STOP REPLICA", Idle, M, Admin),
    ("CHANGE MASTER TO MASTER_HOST = 'h'", Idle, M, Admin),
    ("INSTALL PLUGIN x SONAME 'x.so'", Idle, M, Admin),
    ("PURGE BINARY LOGS TO 'mysql-bin.000010'", Idle, M, Admin),
    ("RESET MASTER", Idle, M, Admin),
    // Transaction control.
    ("BEGIN", Idle, M, TransactionControl),
    ("begin work", Idle, M, TransactionControl),
    ("START TRANSACTION", Idle, M, TransactionControl),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", Idle, M, TransactionControl),
    ("START TRANSACTION READ ONLY", Idle, R, ReadOnlyTransaction),
    ("start transaction read write", Idle, M, TransactionControl),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", Idle, R, ReadOnlyTransaction),
    ("COMMIT", Idle, M, TransactionControl),
    ("ROLLBACK", Idle, M, TransactionControl),
    ("SAVEPOINT sp1", Idle, M, TransactionControl),
    ("ROLLBACK TO SAVEPOINT sp1", Idle, M, TransactionControl),
    ("RELEASE SAVEPOINT sp1", Idle, M, TransactionControl),
    ("XA START 'x'", Idle, M, TransactionControl),
    ("XA END 'x'", Idle, M, TransactionControl),
    ("SET autocommit = 0", Idle, M, TransactionControl),
    ("SET @@autocommit=1", Idle, M, TransactionControl),
    ("SET SESSION autocommit = OFF, @x = 1", Idle, M, TransactionControl),
    // Session commands.
    ("SET NAMES utf8mb4", Idle, M, SessionCommand),
    ("SET @x = 1", Idle, M, SessionCommand),
    ("SET sql_mode = 'STRICT_ALL_TABLES'", Idle, M, SessionCommand),
    ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", Idle, M, SessionCommand),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Idle, M, SessionCommand),
    ("SET ROLE ALL", Idle, M, SessionCommand),
    ("USE db1", Idle, M, SessionCommand),
    ("USE `my db`", Idle, M, SessionCommand),
    ("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */", Idle, M, SessionCommand),
    // Connection-bound state.
    ("LOCK TABLES t READ", Idle, M, TableLock),
    ("UNLOCK TABLES", Idle, M, TableLock),
    ("PREPARE s FROM 'SELECT 1'", Idle, M, SqlPrepare),
    ("EXECUTE s USING @a", Idle, M, SqlPrepare),
    ("EXECUTE IMMEDIATE 'SELECT 1'", Idle, M, SqlPrepare),
    ("DEALLOCATE PREPARE s", Idle, M, SqlPrepare),
    ("DROP PREPARE s", Idle, M, SqlPrepare),
    ("HANDLER t OPEN", Idle, M, Handler),
    ("HANDLER t READ FIRST", Idle, M, Handler),
    // Multi-statements.
    ("SELECT 1; SELECT 2", Idle, M, MultiStatement),
    ("SELECT 1; DELETE FROM t", Idle, M, MultiStatement),
    ("SELECT 1;/* c */ SELECT 2;", Idle, M, MultiStatement),
    ("SELECT 1; /*!50000 DELETE FROM t */", Idle, M, MultiStatement),
    ("SELECT 'a\\'; DELETE FROM t; -- '", Idle, M, MultiStatement),
    ("SELECT 1 FROM t WHERE x = 'a\\\\' OR 1=1; DELETE FROM t", Idle, M, MultiStatement),
    // A GBK/SJIS character whose second byte is 0x5C, its first byte lost to U+FFFD: the
    // server does not read that backslash as an escape, so a DELETE follows the string.
    ("SELECT 'a\\'' , '\u{fffd}\\' ; DELETE FROM t; -- '", Idle, M, MultiStatement),
    ("ALTER EVENT e DO BEGIN INSERT INTO t VALUES (1); SET autocommit = 0; END", Idle, M, Ddl),
    // What the lexer cannot place.
    ("", Idle, M, Unparsed),
    ("   ", Idle, M, Unparsed),
    ("/* only a comment */", Idle, M, Unparsed),
    (";", Idle, M, Unparsed),
    ("FOO BAR", Idle, M, Unparsed),
    ("12345", Idle, M, Unparsed),
    ("'SELECT 1'", Idle, M, Unparsed),
    ("\u{0}\u{1}garbage", Idle, M, Unparsed),
    ("SELEC 1", Idle, M, Unparsed),
    ("(UPDATE t SET a = 1)", Idle, M, Unparsed),
    ("/*!99999 SELECT 1 */", Idle, M, Unparsed),
    // Hints.
    ("/* rwsplit:master */ SELECT 1", Idle, M, HintMaster),
    ("SELECT 1 -- rwsplit:master", Idle, M, HintMaster),
    ("SELECT * FROM t /* RWSPLIT:MASTER */ WHERE a = 1", Idle, M, HintMaster),
    ("-- maxscale route to master\nSELECT 1", Idle, M, HintMaster),
    ("/* rwsplit:replica */ /* rwsplit:master */ SELECT 1", Idle, M, HintMaster),
    ("/* rwsplit:replica */ SELECT GET_LOCK('a', 1)", Idle, R, HintReplica),
    ("/* rwsplit:replica */ SELECT myfunc(1)", Idle, R, HintReplica),
    ("/* rwsplit:replica */ SELECT * FROM t FOR UPDATE", Idle, R, HintReplica),
    ("SELECT 1 -- maxscale route to slave", Idle, R, HintReplica),
    ("/* rwsplit:replica */ INSERT INTO t VALUES (1)", Idle, M, Write),
    ("/* rwsplit:replica */ UPDATE t SET a = 1", Idle, M, Write),
    ("/* rwsplit:replica */ SELECT NEXTVAL(s)", Idle, M, Sequence),
    ("/* rwsplit:replica */ SELECT * INTO OUTFILE '/tmp/x' FROM t", Idle, M, SelectInto),
    ("/* rwsplit:replica */ SELECT 1; DELETE FROM t", Idle, M, MultiStatement),
    ("/* rwsplit:replica */ BEGIN", Idle, M, TransactionControl),
    ("/* rwsplit:replica */ SET @x = 1", Idle, M, SessionCommand),
    ("/* rwsplit:master */ INSERT INTO t VALUES (1)", Idle, M, Write),
    ("SELECT '/* rwsplit:master */'", Idle, R, Read),
    ("/* rwsplit:replica */ SELECT * FROM tmp", Temp, R, HintReplica),
    // Open read-write transaction: everything on the master.
    ("SELECT 1", InTx, M, InTransaction),
    ("SELECT * FROM t", InTx, M, InTransaction),
    ("/* rwsplit:replica */ SELECT 1", InTx, M, InTransaction),
    ("COMMIT", InTx, M, InTransaction),
    ("SHOW WARNINGS", InTx, M, InTransaction),
    ("START TRANSACTION READ ONLY", InTx, M, InTransaction),
    // Autocommit off.
    ("SELECT 1", AcOff, M, AutocommitOff),
    ("/* rwsplit:replica */ SELECT 1", AcOff, M, AutocommitOff),
    ("SET autocommit = 1", AcOff, M, AutocommitOff),
    // Serializable.
    ("SELECT 1", Ser, M, Serializable),
    ("/* rwsplit:replica */ SELECT 1", Ser, M, Serializable),
    ("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", Ser, M, Serializable),
    // Read-only transaction: one replica, as a unit.
    ("SELECT * FROM t", RoTx, R, ReadOnlyTransaction),
    ("SELECT * FROM t FOR UPDATE", RoTx, R, ReadOnlyTransaction),
    ("UPDATE t SET a = 1", RoTx, R, ReadOnlyTransaction),
    ("COMMIT", RoTx, R, ReadOnlyTransaction),
    ("ROLLBACK", RoTx, R, ReadOnlyTransaction),
    ("SET @x = 1", RoTx, R, ReadOnlyTransaction),
    ("START TRANSACTION READ ONLY", RoTx, R, ReadOnlyTransaction),
    ("CREATE TABLE x (a INT)", RoTx, M, Ddl),
    ("BEGIN", RoTx, M, TransactionControl),
    ("SELECT 1; COMMIT; DELETE FROM t", RoTx, M, MultiStatement),
    ("LOCK TABLES t WRITE", RoTx, M, TableLock),
    ("garbage here", RoTx, M, Unparsed),
    // Temporary tables.
    ("SELECT * FROM tmp", Temp, M, TempTable),
    ("SELECT * FROM TMP WHERE a = 1", Temp, M, TempTable),
    ("SELECT * FROM `tmp`", Temp, M, TempTable),
    ("SELECT * FROM db1.tmp", Temp, M, TempTable),
    ("SELECT * FROM users u JOIN tmp ON u.id = tmp.id", Temp, M, TempTable),
    ("SELECT * FROM users WHERE id IN (SELECT id FROM tmp)", Temp, M, TempTable),
    ("SELECT * FROM users WHERE EXISTS (SELECT 1 FROM tmp WHERE tmp.id = users.id)", Temp, M, TempTable),
    ("SELECT COUNT(*) FROM users WHERE name = (SELECT name FROM tmp LIMIT 1)", Temp, M, TempTable),
    ("WITH c AS (SELECT * FROM tmp) SELECT * FROM c", Temp, M, TempTable),
    ("TABLE tmp", Temp, M, TempTable),
    ("SHOW CREATE TABLE tmp", Temp, M, TempTable),
    ("DESCRIBE tmp", Temp, M, TempTable),
    ("SELECT * FROM t2", Temp, M, TempTable),
    ("SELECT * FROM db2.t2", Temp, M, TempTable),
    ("SELECT * FROM a, tmp WHERE a.x = 1 ORDER BY 1 LIMIT 1 LOCK IN SHARE MODE", Temp, M, LockingRead),
    ("SELECT * FROM a, tmp WHERE a.x = 1 INTO @x", Temp, M, SelectInto),
    ("INSERT INTO tmp VALUES (1)", Temp, M, Write),
    ("SELECT * FROM users", Temp, R, Read),
    ("SELECT tmp.a FROM users tmp", Temp, R, Read),
    ("SELECT * FROM db3.t2", Temp, R, Read),
    ("SELECT 'tmp' FROM users", Temp, R, Read),
    ("SELECT a AS tmp FROM users ORDER BY tmp", Temp, R, Read),
    ("SELECT * FROM a STRAIGHT_JOIN tmp ON a.id = tmp.id", Temp, M, TempTable),
    // sqlparser does not know MariaDB's FOR SYSTEM_TIME: the lexer reads the FROM list.
    ("SELECT * FROM tmp FOR SYSTEM_TIME ALL", Temp, M, TempTable),
    ("SELECT tmp FROM users FOR SYSTEM_TIME ALL", Temp, R, Read),
    // Placeholders of prepared statements.
    ("SELECT * FROM t WHERE id = ? AND name = ?", Idle, R, Read),
    ("INSERT INTO t (a, b) VALUES (?, ?)", Idle, M, Write),
];

fn decision(sql: &str, fx: Fx) -> Decision {
    classify(sql, &view(fx))
}

#[test]
fn routing_table() {
    assert!(ROUTES.len() >= 150, "the table must cover at least 150 statements, has {}", ROUTES.len());
    eprintln!("routing table: {} statements", ROUTES.len());
    let mut failures = Vec::new();
    for &(sql, fx, route, reason) in ROUTES {
        let d = decision(sql, fx);
        if (d.route, d.reason) != (route, reason) {
            failures.push(format!("{sql:?} [{fx:?}]: expected {route:?}/{reason:?}, got {:?}/{:?}", d.route, d.reason));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), ROUTES.len(), failures.join("\n"));
}

#[test]
fn routing_table_covers_every_reason_and_route() {
    for reason in Reason::ALL {
        assert!(ROUTES.iter().any(|c| c.3 == *reason), "no case for {reason:?}");
    }
    for route in [M, R, P] {
        assert!(ROUTES.iter().any(|c| c.2 == route));
    }
}

#[test]
fn decide_without_text_is_the_cautious_one() {
    for &(sql, fx, route, reason) in ROUTES {
        let d = decide(&scan(sql), &view(fx));
        if reason == Reason::Read && fx == Fx::Temp {
            // Without the text, a read that may name a temporary table goes to the master.
            assert!(d.route == route || d.reason == Reason::TempTable, "{sql}");
        } else {
            assert_eq!((d.route, d.reason), (route, reason), "{sql}");
        }
    }
}

#[test]
fn reasons_have_stable_distinct_names() {
    let names: HashSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), Reason::ALL.len());
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
    assert_eq!(Reason::UserFunction.as_str(), "user_function");
    assert_eq!(Route::Previous.as_str(), "previous");
}

fn s(v: &str) -> String {
    v.to_string()
}

fn vars(key: &str) -> Effect {
    Effect::SessionVariables { key: s(key) }
}

fn names(charset: &str, collation: Option<&str>) -> Effect {
    Effect::SetNames { charset: s(charset), collation: collation.map(s) }
}

#[test]
fn effects_table() {
    use Effect::*;
    use PinReason::*;
    let cases: Vec<(&str, Fx, Vec<Effect>)> = vec![
        ("SELECT 1", Idle, vec![]),
        ("BEGIN", Idle, vec![Begin { read_only: false }]),
        ("START TRANSACTION READ ONLY", Idle, vec![Begin { read_only: true }]),
        ("START TRANSACTION READ ONLY", InTx, vec![Begin { read_only: false }]),
        ("START TRANSACTION READ ONLY", AcOff, vec![Begin { read_only: false }]),
        ("START TRANSACTION READ WRITE", Idle, vec![Begin { read_only: false }]),
        ("XA START 'x'", Idle, vec![Begin { read_only: false }]),
        ("XA COMMIT 'x'", InTx, vec![EndTransaction]),
        ("XA END 'x'", InTx, vec![]),
        ("COMMIT", InTx, vec![EndTransaction]),
        ("COMMIT WORK AND CHAIN", InTx, vec![EndTransaction, Begin { read_only: false }]),
        ("COMMIT AND NO CHAIN", InTx, vec![EndTransaction]),
        ("ROLLBACK", InTx, vec![EndTransaction]),
        ("ROLLBACK TO sp1", InTx, vec![]),
        ("ROLLBACK WORK TO SAVEPOINT sp1", InTx, vec![]),
        ("SET autocommit=0", Idle, vec![SetAutocommit(false)]),
        ("SET @@autocommit = 1", Idle, vec![SetAutocommit(true)]),
        ("SET SESSION autocommit = OFF", Idle, vec![SetAutocommit(false)]),
        ("set autocommit=ON", Idle, vec![SetAutocommit(true)]),
        ("SET @@session.autocommit='0'", Idle, vec![SetAutocommit(false)]),
        ("SET autocommit=0, @x=1", Idle, vec![SetAutocommit(false), vars("@x")]),
        ("SET autocommit = @old_autocommit", Idle, vec![]),
        ("SET @@GLOBAL.autocommit = 0", Idle, vec![]),
        ("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", Idle, vec![SetIsolation { serializable: true }]),
        (
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY",
            Idle,
            vec![SetIsolation { serializable: false }, vars("transaction_read_only")],
        ),
        ("SET tx_isolation = 'SERIALIZABLE'", Idle, vec![SetIsolation { serializable: true }]),
        ("SET @@transaction_isolation = 'READ-COMMITTED'", Idle, vec![SetIsolation { serializable: false }]),
        ("SET SESSION transaction_isolation = @saved", Idle, vec![vars("transaction_isolation")]),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Idle, vec![]),
        ("SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE", Idle, vec![]),
        ("USE db1", Idle, vec![UseSchema(s("db1"))]),
        ("use Sales", Idle, vec![UseSchema(s("Sales"))]),
        ("USE `My``Db`", Idle, vec![UseSchema(s("My`Db"))]),
        ("SET NAMES utf8mb4", Idle, vec![names("utf8mb4", None)]),
        ("SET NAMES 'UTF8MB4' COLLATE 'utf8mb4_unicode_ci'", Idle, vec![names("utf8mb4", Some("utf8mb4_unicode_ci"))]),
        ("SET CHARACTER SET latin1", Idle, vec![names("latin1", None)]),
        ("SET CHARSET utf8", Idle, vec![names("utf8", None)]),
        ("SET NAMES DEFAULT", Idle, vec![names("default", None)]),
        ("/*!40101 SET NAMES utf8mb4 */", Idle, vec![names("utf8mb4", None)]),
        ("SET @x = 1", Idle, vec![vars("@x")]),
        ("SET @X := 1, @y := 2", Idle, vec![vars("@x,@y")]),
        // A user variable set to an expression is not replayable: no replay at all.
        ("SET @X := 1, @y = (SELECT 1 FROM t)", Idle, vec![]),
        ("SET @s = _utf8mb4'x' COLLATE utf8mb4_bin", Idle, vec![vars("@s")]),
        ("SET @v = -1.5e-3, @w = NULL, @x = 0x1F, @y = X'41', @z = 'a' 'b'", Idle, vec![vars("@v,@w,@x,@y,@z")]),
        ("SET sql_mode = 'ANSI', @v = NOW()", Idle, vec![]),
        ("SET autocommit = 0, @v = NOW()", Idle, vec![SetAutocommit(false)]),
        ("SET SESSION sql_mode = 'ANSI', @@session.time_zone = '+00:00'", Idle, vec![vars("sql_mode,time_zone")]),
        ("SET time_zone = 'UTC', sql_mode = ''", Idle, vec![vars("sql_mode,time_zone")]),
        ("SET LOCAL wait_timeout = 10", Idle, vec![vars("wait_timeout")]),
        ("SET @@tx_read_only = 1", Idle, vec![vars("transaction_read_only")]),
        ("SET character_set_client = utf8mb4", Idle, vec![vars("character_set_client")]),
        ("SET GLOBAL a = 1, SESSION b = 2", Idle, vec![]),
        ("SET ROLE r1", Idle, vec![vars("role")]),
        // mysqldump's prologue: the saved value is the connection's own, so it stays there.
        ("/*!40101 SET @saved_cs_client = @@character_set_client */", Idle, vec![]),
        ("CREATE TEMPORARY TABLE tmp (a INT)", Idle, vec![CreateTempTable(s("tmp"))]),
        ("CREATE TEMPORARY TABLE IF NOT EXISTS `Db`.`Tmp` (a INT)", Idle, vec![CreateTempTable(s("db.tmp"))]),
        ("CREATE OR REPLACE TEMPORARY TABLE t1 AS SELECT 1", Idle, vec![CreateTempTable(s("t1"))]),
        ("CREATE TEMPORARY SEQUENCE s1", Idle, vec![CreateTempTable(s("s1"))]),
        ("CREATE TABLE t (a INT)", Idle, vec![EndTransaction]),
        ("CREATE PROCEDURE p() BEGIN SET autocommit = 0; END", Idle, vec![EndTransaction]),
        ("DROP TABLE a, b", Idle, vec![EndTransaction, DropTables(vec![s("a"), s("b")])]),
        ("DROP TEMPORARY TABLE IF EXISTS tmp", Idle, vec![DropTables(vec![s("tmp")])]),
        (
            "DROP TABLE IF EXISTS `db`.`T1`, t2 CASCADE",
            Idle,
            vec![EndTransaction, DropTables(vec![s("db.t1"), s("t2")])],
        ),
        ("DROP DATABASE x", Idle, vec![EndTransaction]),
        ("ALTER TABLE t ADD c INT", Idle, vec![EndTransaction]),
        ("TRUNCATE t", Idle, vec![EndTransaction]),
        ("RENAME TABLE a TO b", Idle, vec![EndTransaction]),
        ("GRANT SELECT ON *.* TO u", Idle, vec![EndTransaction]),
        ("OPTIMIZE TABLE t", Idle, vec![EndTransaction]),
        ("ANALYZE TABLE t", Idle, vec![EndTransaction]),
        ("START SLAVE", Idle, vec![EndTransaction]),
        ("KILL 1", Idle, vec![]),
        ("LOCK TABLES t WRITE", Idle, vec![EndTransaction, Pin(TableLock)]),
        ("UNLOCK TABLES", Idle, vec![Unpin(TableLock)]),
        ("FLUSH TABLES WITH READ LOCK", Idle, vec![EndTransaction, Pin(TableLock)]),
        ("FLUSH TABLES t FOR EXPORT", Idle, vec![EndTransaction, Pin(TableLock)]),
        ("FLUSH LOGS", Idle, vec![EndTransaction]),
        ("LOCK INSTANCE FOR BACKUP", Idle, vec![Pin(TableLock)]),
        ("UNLOCK INSTANCE", Idle, vec![Unpin(TableLock)]),
        ("BACKUP STAGE START", Idle, vec![Pin(TableLock)]),
        ("BACKUP STAGE END", Idle, vec![Unpin(TableLock)]),
        ("SELECT GET_LOCK('a', 1)", Idle, vec![Pin(NamedLock)]),
        ("SELECT RELEASE_LOCK('a')", Idle, vec![Unpin(NamedLock)]),
        ("SELECT RELEASE_ALL_LOCKS()", Idle, vec![ReleaseAllNamedLocks]),
        // RELEASE_ALL_LOCKS releases the locks only as a call of the built-in.
        ("SELECT release_all_locks()", Idle, vec![ReleaseAllNamedLocks]),
        ("DO Release_All_Locks ( )", Idle, vec![ReleaseAllNamedLocks]),
        ("SELECT 'release_all_locks'", Idle, vec![]),
        ("SELECT 'release_all_locks()'", Idle, vec![]),
        ("SELECT RELEASE_LOCK('x'), 'release_all_locks'", Idle, vec![Unpin(NamedLock)]),
        ("SELECT /* release_all_locks() */ 1", Idle, vec![]),
        ("SELECT 1 -- release_all_locks()", Idle, vec![]),
        ("SELECT release_all_locks FROM t", Idle, vec![]),
        ("SELECT `release_all_locks`()", Idle, vec![]),
        ("SELECT db.release_all_locks()", Idle, vec![]),
        ("SELECT @release_all_locks", Idle, vec![]),
        ("SELECT GET_LOCK('a', 1), RELEASE_ALL_LOCKS()", Idle, vec![Pin(NamedLock), ReleaseAllNamedLocks]),
        ("/*!40101 SELECT RELEASE_ALL_LOCKS() */", Idle, vec![ReleaseAllNamedLocks]),
        // Not run now, or not by every server: it may release nothing.
        ("SELECT 1 /*!80013 , RELEASE_ALL_LOCKS() */", Idle, vec![Unpin(NamedLock)]),
        ("EXPLAIN SELECT RELEASE_ALL_LOCKS()", Idle, vec![Unpin(NamedLock)]),
        ("CREATE VIEW v AS SELECT RELEASE_ALL_LOCKS()", Idle, vec![EndTransaction, Unpin(NamedLock)]),
        ("CREATE PROCEDURE p() BEGIN DO RELEASE_ALL_LOCKS(); END", Idle, vec![EndTransaction, Unpin(NamedLock)]),
        ("PREPARE s FROM 'SELECT RELEASE_ALL_LOCKS()'", Idle, vec![Pin(SqlPrepare)]),
        ("SELECT GET_LOCK('a', 1), RELEASE_LOCK('b')", Idle, vec![Pin(NamedLock), Unpin(NamedLock)]),
        ("SELECT IS_FREE_LOCK('a')", Idle, vec![]),
        ("INSERT INTO t SELECT GET_LOCK('x', 1)", Idle, vec![Pin(NamedLock)]),
        ("INSERT INTO t (a) VALUES (RELEASE_LOCK('x'))", Idle, vec![Unpin(NamedLock)]),
        ("UPDATE t SET a = GET_LOCK('x', 1)", Idle, vec![Pin(NamedLock)]),
        ("SELECT 'GET_LOCK(1)'", Idle, vec![]),
        ("PREPARE s FROM 'SELECT 1'", Idle, vec![Pin(SqlPrepare)]),
        ("DEALLOCATE PREPARE s", Idle, vec![Unpin(SqlPrepare)]),
        ("DROP PREPARE s", Idle, vec![Unpin(SqlPrepare)]),
        ("EXECUTE s", Idle, vec![]),
        ("HANDLER t OPEN", Idle, vec![Pin(Handler)]),
        ("HANDLER db.t OPEN AS h", Idle, vec![Pin(Handler)]),
        ("HANDLER t READ NEXT", Idle, vec![]),
        ("HANDLER t CLOSE", Idle, vec![Unpin(Handler)]),
        ("SET autocommit=0; SELECT 1", Idle, vec![SetAutocommit(false)]),
        ("BEGIN; INSERT INTO t VALUES (1); COMMIT", Idle, vec![Begin { read_only: false }, EndTransaction]),
    ];
    eprintln!("effects table: {} statements", cases.len());
    let mut failures = Vec::new();
    for (sql, fx, expected) in &cases {
        let got = decision(sql, *fx).effects;
        if &got != expected {
            failures.push(format!("{sql:?} [{fx:?}]: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Huge, deeply nested and repetitive texts: no stack overflow, no quadratic blow-up (the
/// test would time out), and a cautious answer.
#[test]
fn huge_and_nested_texts() {
    let cases = [
        (format!("{}SELECT 1", "(".repeat(200_000)), None),
        (format!("{}SELECT 1", "SET STATEMENT a = 1 FOR ".repeat(50_000)), Some(Reason::Unparsed)),
        (format!("SELECT {}1", "(".repeat(100_000)), Some(Reason::Read)),
        ("/*".repeat(100_000), Some(Reason::Unparsed)),
        ("/*!".repeat(100_000), Some(Reason::Unparsed)),
        (format!("SELECT 1{}", ";".repeat(100_000)), Some(Reason::Read)),
        ("SELECT 1;".repeat(50_000), Some(Reason::MultiStatement)),
        (format!("SELECT '{}'", "\\'".repeat(100_000)), None),
        (format!("SELECT {}", "WITH ".repeat(100_000)), None),
        (format!("WITH {}", "a AS (SELECT 1), ".repeat(20_000)), Some(Reason::Unparsed)),
        ("SELECT f(".repeat(50_000), Some(Reason::UserFunction)),
        (format!("DROP TABLE {}", "t, ".repeat(50_000)), Some(Reason::Ddl)),
        (format!("SET {}", "@a = 1, ".repeat(50_000)), None),
        // Names a temporary table, so sqlparser runs (and stops at its recursion limit).
        (format!("SELECT * FROM tmp WHERE {}1{}", "(".repeat(100_000), ")".repeat(100_000)), None),
    ];
    for (sql, reason) in &cases {
        for fx in [Idle, Temp] {
            let d = decision(sql, fx);
            if let Some(reason) = reason {
                assert_eq!(d.reason, *reason, "{}…", sql.get(..40).unwrap_or(sql));
            }
            if fx == Temp && sql.contains("FROM tmp") {
                assert_eq!(d.reason, Reason::TempTable);
            }
        }
    }
}

#[test]
fn statement_accessors() {
    let st = scan("SELECT SQL_CALC_FOUND_ROWS * FROM t /* rwsplit:replica */");
    assert!(st.is_read() && st.calc_found_rows());
    assert_eq!(st.hint(), Some(Route::Replica));
    assert_eq!(st.kind(), StatementKind::Select);
    assert!(scan("SELECT @a := 1").assigns_user_variables());
    assert!(scan("SELECT 1 INTO @a").assigns_user_variables());
    assert!(!scan("SELECT @a").assigns_user_variables());
    assert!(!scan("SET @a := 1").assigns_user_variables());
    assert!(scan("INSERT INTO t SELECT @a := 1").assigns_user_variables());
    assert!(!scan("SELECT myfunc()").is_read());
    assert!(scan("SELECT LAST_INSERT_ID()").is_read());
    assert!(!scan("SELECT 1; SELECT 2").is_read());
}

#[test]
fn assigns_user_variables_table() {
    let cases: &[(&str, bool)] = &[
        // OUT / INOUT parameters.
        ("CALL p(1, @out)", true),
        ("CALL p(@a)", true),
        ("call db.p(@a, 2)", true),
        ("CALL p(1, @`o u t`) ;", true),
        ("CALL p(1, /* out */ @o /* c */)", true),
        ("CALL p()", false),
        ("CALL p", false),
        ("CALL p(1, 'x')", false),
        ("CALL p(@a + 1)", false),
        ("CALL p((@a))", false),
        ("CALL p(f(@a))", false),
        // SELECT … INTO.
        ("SELECT 1 INTO @v", true),
        ("SELECT a FROM t LIMIT 1 INTO @v", true),
        ("SELECT a, b INTO @a, @b FROM t WHERE id = 1", true),
        ("EXPLAIN FORMAT=JSON INTO @plan SELECT 1", true),
        // `@v := …` anywhere.
        ("SELECT @v := 1", true),
        ("DO @v := 1", true),
        ("INSERT INTO t VALUES (@v := 1)", true),
        ("UPDATE t SET a = (@v := a + 1)", true),
        ("SELECT * FROM t WHERE (@n := @n + 1) < 10", true),
        ("SET @a = @b := 1", true),
        ("SET autocommit = (@x := 0)", true),
        ("SET sql_mode = (@old := @@sql_mode)", true),
        // SET @v = <not a constant>.
        ("SET @v = (SELECT max(id) FROM t)", true),
        ("SET @v = NOW()", true),
        ("SET @a = @b + 1", true),
        ("SET @a = @b", true),
        ("SET @v := NOW()", true),
        ("SET @v = @@sql_mode", true),
        ("SET @v = ?", true),
        ("SET @v = 1 + 1", true),
        ("SET @v = 5 - 3", true),
        ("SET @v = (5)", true),
        ("SET @v = CONCAT('a', 'b')", true),
        ("SET @v = 'a' COLLATE utf8mb4_bin || 'b'", true),
        ("SET @v = DEFAULT", true),
        ("SET @v = 1.2.3", true),
        ("SET @v = 1e", true),
        ("SET @v = 1 . 5", true),
        ("SET @a = 1, @b = UUID()", true),
        ("SET sql_mode = 'ANSI', @v = NOW()", true),
        ("SET SESSION time_zone = '+00:00', @v := @@time_zone", true),
        ("SET GLOBAL max_connections = 10, @v = NOW()", true),
        ("/*!40101 SET @saved_cs_client = @@character_set_client */", true),
        // GET DIAGNOSTICS assigns its targets.
        ("GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT", true),
        ("GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT", true),
        // Constants are replayed by the session: not tied.
        ("SET @v = 5", false),
        ("SET @v := 5", false),
        ("SET @s = 'x'", false),
        ("SET @s = \"x\"", false),
        ("SET @s = _utf8mb4'x' COLLATE utf8mb4_bin", false),
        ("SET @s = _latin1 'x' COLLATE 'latin1_bin'", false),
        ("SET @s = N'x', @t = x'4142', @u = b'0101', @w = 'a' 'b' 'c'", false),
        ("SET @v = -5, @w = +5, @x = - -5", false),
        ("SET @v = 1.5, @w = .5, @x = 5., @y = 1e10, @z = 1.5E-3", false),
        ("SET @v = 1.5e+3, @w = 0x1F, @x = 0b101", false),
        ("SET @v = NULL, @w = TRUE, @x = false", false),
        ("SET @v = 5 /* five */", false),
        ("SET @v = 5;", false),
        ("SET sql_mode = NOW()", false),
        ("SET autocommit = 0, @x = 1", false),
        // Reading a variable assigns nothing.
        ("SELECT @a", false),
        ("SELECT @a = 1", false),
        ("EXECUTE s USING @a", false),
        ("SELECT 'INTO @x'", false),
        ("SELECT '@a := 1'", false),
    ];
    let mut failures = Vec::new();
    for &(sql, expected) in cases {
        let got = scan(sql).assigns_user_variables();
        if got != expected {
            failures.push(format!("{sql:?}: expected {expected}, got {got}"));
        }
        if expected && sql.trim_start().to_ascii_uppercase().starts_with("SET @") {
            // A SET that cannot be replayed has no replayable effect for its user variables.
            let d = classify(sql, &view(Idle));
            assert!(
                !d.effects.iter().any(|e| matches!(e, Effect::SessionVariables { .. })),
                "{sql:?}: {:?}",
                d.effects
            );
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Differential test against sqlparser.

mod differential {
    use super::*;
    use crate::classifier::kind::Flags;
    use sqlparser::ast::{Query, SetExpr, Statement as Ast, TableFactor};
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn set_expr_is_read(body: &SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => {
                let derived_are_reads = select.from.iter().all(|from| {
                    std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation)).all(|f| match f {
                        TableFactor::Derived { subquery, .. } => query_is_read(subquery),
                        _ => true,
                    })
                });
                select.into.is_none() && derived_are_reads
            }
            SetExpr::Query(q) => query_is_read(q),
            SetExpr::SetOperation { left, right, .. } => set_expr_is_read(left) && set_expr_is_read(right),
            SetExpr::Values(_) | SetExpr::Table(_) => true,
            _ => false,
        }
    }

    fn query_is_read(q: &Query) -> bool {
        q.locks.is_empty() && set_expr_is_read(&q.body)
    }

    /// The read/write judgement derived from sqlparser's AST: a query without locking clause
    /// or INTO, an EXPLAIN that does not execute a write, DESCRIBE and SHOW are reads;
    /// everything else (INSERT, UPDATE, DELETE, CREATE, SET, transaction control, …) is not.
    fn ast_is_read(statements: &[Ast]) -> bool {
        let [statement] = statements else {
            return false;
        };
        match statement {
            Ast::Query(q) => query_is_read(q),
            Ast::Explain { analyze, statement, .. } => match statement.as_ref() {
                Ast::Query(q) => !analyze || query_is_read(q),
                _ => !analyze,
            },
            Ast::ExplainTable { .. }
            | Ast::ShowFunctions { .. }
            | Ast::ShowVariable { .. }
            | Ast::ShowStatus { .. }
            | Ast::ShowVariables { .. }
            | Ast::ShowCreate { .. }
            | Ast::ShowColumns { .. }
            | Ast::ShowDatabases { .. }
            | Ast::ShowProcessList { .. }
            | Ast::ShowSchemas { .. }
            | Ast::ShowTables { .. }
            | Ast::ShowViews { .. }
            | Ast::ShowCollation { .. }
            | Ast::ShowCharset(_) => true,
            _ => false,
        }
    }

    /// Rules sqlparser's structure cannot see: the lexer marks these reads as not plain reads
    /// on purpose (a function call may write or hold a lock; `@x :=` assigns session state).
    const FUNCTION_RULES: u32 =
        Flags::LOCK_FUNCTION | Flags::USER_FUNCTION | Flags::SEQUENCE_ADVANCE | Flags::USER_VAR_ASSIGN;

    /// Statements where the two judgements differ for a reason that is not a function rule,
    /// each with why the lexer's answer is the right one for routing.
    const JUSTIFIED: &[(&str, &str)] = &[
        (
            "/*!99999 SELECT */ DELETE FROM t",
            "sqlparser reads the versioned comment as SQL; servers below 9.99.99 skip it and run the DELETE",
        ),
        ("/*!99999 SELECT 1 */", "servers below 9.99.99 skip the versioned comment: the statement is empty for them"),
        (
            "SELECT 'a\\'; DELETE FROM t; -- '",
            "sqlparser assumes backslash escapes; under NO_BACKSLASH_ESCAPES the server runs a DELETE",
        ),
        (
            "SELECT 'a\\'' , '\u{fffd}\\' ; DELETE FROM t; -- '",
            "on a GBK/SJIS connection the second backslash is part of a character: the server runs a DELETE",
        ),
    ];

    /// Statements generated from templates: clauses, comments, quoting and case combined.
    pub(super) fn generated() -> Vec<String> {
        let columns =
            ["*", "a", "a, b", "COUNT(*)", "MAX(a) AS m", "CONCAT(a, 'x')", "f(a)", "GET_LOCK('x', 1)", "@v := a"];
        let tables = ["t", "db.t", "`t`", "t AS x", "t1 JOIN t2 ON t1.id = t2.id", "(SELECT 1 AS a) AS d", "t1, t2"];
        let filters =
            ["", " WHERE a = 1", " WHERE a IN (SELECT a FROM u)", " WHERE b LIKE 'FOR UPDATE'", " WHERE c = \"x;y\""];
        let tails =
            ["", " ORDER BY a LIMIT 5", " FOR UPDATE", " FOR SHARE", " LOCK IN SHARE MODE", " FOR UPDATE SKIP LOCKED"];
        let prefixes = ["", "/* c */ ", "-- c\n", "# c\n"];
        let mut out = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            for (j, t) in tables.iter().enumerate() {
                for (k, f) in filters.iter().enumerate() {
                    for (l, tail) in tails.iter().enumerate() {
                        let prefix = prefixes[(i + j + k + l) % prefixes.len()];
                        let sql = format!("{prefix}SELECT {c} FROM {t}{f}{tail}");
                        out.push(if (i + k + l) % 3 == 0 { sql.to_lowercase() } else { sql });
                    }
                }
            }
        }
        let targets = ["t", "db.t", "`my table`"];
        let values = ["1", "'x'", "'a;b'", "\"FOR UPDATE\"", "NOW()", "(SELECT MAX(id) FROM u)"];
        for (i, t) in targets.iter().enumerate() {
            for (j, v) in values.iter().enumerate() {
                let prefix = prefixes[(i + j) % prefixes.len()];
                out.push(format!("{prefix}INSERT INTO {t} (a) VALUES ({v})"));
                out.push(format!("{prefix}INSERT INTO {t} (a) SELECT {v} FROM u"));
                out.push(format!("{prefix}UPDATE {t} SET a = {v} WHERE id = 1"));
                out.push(format!("{prefix}DELETE FROM {t} WHERE a = {v}"));
                out.push(format!("{prefix}REPLACE INTO {t} (a) VALUES ({v})"));
                out.push(format!("{prefix}SELECT {v} FROM {t}"));
                out.push(format!("{prefix}SELECT {v} FROM {t} UNION SELECT {v} FROM {t}"));
                out.push(format!("{prefix}WITH c AS (SELECT {v} AS a) SELECT a FROM c"));
                out.push(format!("{prefix}EXPLAIN SELECT {v} FROM {t}"));
                out.push(format!("{prefix}CREATE TABLE {t}_copy AS SELECT {v} AS a"));
                out.push(format!("{prefix}SELECT {v} FROM {t}; SELECT 1"));
            }
        }
        for stmt in [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "START TRANSACTION",
            "START TRANSACTION READ ONLY",
            "SET @x = 1",
            "SET autocommit = 0",
            "SET NAMES utf8mb4",
            "USE db",
            "DROP TABLE t",
            "ALTER TABLE t ADD c INT",
            "TRUNCATE TABLE t",
            "SHOW TABLES",
            "SHOW DATABASES",
            "SHOW VARIABLES LIKE 'x'",
            "SHOW COLUMNS FROM t",
            "SHOW CREATE TABLE t",
            "SHOW PROCESSLIST",
            "DESCRIBE t",
            "CALL p()",
            "LOCK TABLES t READ",
            "UNLOCK TABLES",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "KILL 3",
            "GRANT SELECT ON db.* TO u",
            "CREATE INDEX i ON t (a)",
            "DROP VIEW v",
            "CREATE VIEW v AS SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "EXPLAIN UPDATE t SET a = 1",
            "SELECT 1 INTO @x",
            "TABLE t",
        ] {
            out.push(stmt.to_string());
        }
        out
    }

    #[test]
    fn lexer_agrees_with_sqlparser() {
        let mut corpus: Vec<String> = ROUTES.iter().map(|c| c.0.to_string()).collect();
        corpus.extend(generated());
        let mut parsed = 0usize;
        let mut function_rule = 0usize;
        let mut justified = 0usize;
        let mut disagreements = Vec::new();
        for sql in &corpus {
            let Ok(ast) = Parser::parse_sql(&MySqlDialect {}, sql) else {
                continue;
            };
            if ast.is_empty() {
                continue;
            }
            parsed += 1;
            let stmt = scan(sql);
            let (lexer, oracle) = (stmt.is_read(), ast_is_read(&ast));
            if lexer == oracle {
                continue;
            }
            if !lexer && oracle && stmt.flags.has(FUNCTION_RULES) {
                function_rule += 1;
                continue;
            }
            if JUSTIFIED.iter().any(|(j, _)| j == sql) {
                justified += 1;
                continue;
            }
            disagreements.push(format!("{sql:?}: lexer read={lexer}, sqlparser read={oracle}"));
        }
        eprintln!(
            "differential: {} statements, {parsed} parsed by sqlparser, {function_rule} differ by a function rule, \
             {justified} justified",
            corpus.len()
        );
        assert!(parsed > 1000, "only {parsed} statements parsed");
        assert!(function_rule > 0);
        assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests: the lexer is fed client text, so it must take anything.

const FIXTURES: [Fx; 6] = [Idle, InTx, RoTx, AcOff, Ser, Temp];

/// Fragments that stress the lexer: unbalanced quotes and comments, executable comments,
/// variables, keywords the rules look for.
const SOUP: &[&str] = &[
    "SELECT",
    "select",
    "INSERT",
    "UPDATE",
    "DELETE",
    "FROM",
    "WHERE",
    "FOR",
    "UPDATE",
    "SHARE",
    "LOCK",
    "IN",
    "INTO",
    "OUTFILE",
    "NEXT",
    "VALUE",
    "WITH",
    "RECURSIVE",
    "AS",
    "SET",
    "autocommit",
    "NAMES",
    "USE",
    "BEGIN",
    "START",
    "TRANSACTION",
    "READ",
    "ONLY",
    "COMMIT",
    "CREATE",
    "TEMPORARY",
    "TABLE",
    "DROP",
    "SHOW",
    "EXPLAIN",
    "ANALYZE",
    "GET_LOCK",
    "myfunc",
    "tmp",
    "t",
    "db",
    "1",
    "0x1F",
    "(",
    ")",
    ",",
    ";",
    ".",
    "=",
    ":=",
    "*",
    "'",
    "\"",
    "`",
    "\\",
    "''",
    "/*",
    "*/",
    "/*!",
    "/*!80013",
    "/*M!",
    "--",
    "-- ",
    "#",
    "\n",
    " ",
    "@",
    "@@",
    "@x",
    "@@session.",
    "/* rwsplit:master */",
    "-- rwsplit:replica\n",
    "é",
    "\u{0}",
    "\u{fffd}",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(SOUP), any::<bool>()), 0..40).prop_map(|parts| {
        parts.into_iter().map(|(p, space)| if space { format!("{p} ") } else { p.to_string() }).collect()
    })
}

/// A literal with arbitrary content, written so that the server reads it as one literal.
fn literal() -> impl Strategy<Value = String> {
    let text = any::<String>();
    prop_oneof![
        text.prop_map(|c| format!("'{}'", c.replace('\\', "\\\\").replace('\'', "''"))),
        text.prop_map(|c| format!("\"{}\"", c.replace('\\', "\\\\").replace('"', "\"\""))),
        text.prop_map(|c| format!("`{}`", c.replace('`', "``"))),
        text.prop_map(|c| format!("1 /* {} */", c.replace("*/", "* /"))),
        text.prop_map(|c| format!("1 -- {}\n", c.replace(['\n', '\r'], " "))),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| format!("x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())),
    ]
}

fn check_invariants(sql: &str) {
    let stmt = scan(sql);
    for fx in FIXTURES {
        let d = decide_with_text(&stmt, sql, &view(fx));
        if fx == Idle && d.route == Route::Replica {
            // Nothing but a single read, or a read-only transaction, ever goes to a replica.
            assert!(
                (stmt.kind().is_read() && !stmt.is_multi_statement()) || d.reason == Reason::ReadOnlyTransaction,
                "{sql:?} went to a replica: {d:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn scan_takes_any_string(sql in any::<String>()) {
        check_invariants(&sql);
    }

    #[test]
    fn scan_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_invariants(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn scan_takes_sql_soup(sql in soup()) {
        check_invariants(&sql);
    }

    #[test]
    fn select_of_any_literal_is_a_read(lit in literal()) {
        let sql = format!("SELECT {lit}");
        let d = classify(&sql, &view(Idle));
        prop_assert_eq!((d.route, d.reason), (Route::Replica, Reason::Read), "{}", sql);
        prop_assert!(d.effects.is_empty());
    }
}
