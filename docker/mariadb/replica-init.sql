-- Run once by the mariadb image's entrypoint when a replica's datadir is created (after the
-- master is healthy: docker-compose.yml's depends_on). The replica starts from an empty
-- gtid_slave_pos, so it replays the master's whole binlog, accounts included. Its own set-up
-- wrote nothing to its binlog (the entrypoint keeps root's set-up out of it), so
-- gtid_strict_mode has nothing to object to.
CHANGE MASTER TO
    MASTER_HOST = 'master',
    MASTER_PORT = 3306,
    MASTER_USER = 'repl',
    MASTER_PASSWORD = 'repl',
    MASTER_USE_GTID = slave_pos,
    MASTER_CONNECT_RETRY = 1;
START SLAVE;
