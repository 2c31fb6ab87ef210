-- Run once by the mariadb image's entrypoint when the master's datadir is created. It is
-- binlogged (the entrypoint only keeps its own root set-up out of the binlog), so the replicas,
-- which start from an empty gtid_slave_pos, receive these accounts by replication.
--
-- Hosts are '%' here, unlike `make lab` (127.0.0.1 and localhost): clients are other
-- containers whose addresses are not known in advance. The compose network is private and the
-- published ports are bound to the host's 127.0.0.1.

CREATE DATABASE IF NOT EXISTS db_test;

-- The application account rwsplit uses on every server. Not GRANT ALL: that includes
-- READ_ONLY ADMIN, with which a write misrouted to a read_only replica would succeed.
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES,
      LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT,
      TRIGGER, REFERENCES ON *.* TO 'app'@'%';

-- The monitor: replication state everywhere, and its heartbeat table in `rwsplit`.
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY 'monitor';
GRANT SLAVE MONITOR, BINLOG MONITOR, PROCESS, REPLICATION CLIENT ON *.* TO 'monitor'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON rwsplit.* TO 'monitor'@'%';

-- Replication.
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
