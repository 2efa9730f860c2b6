-- DistillWatch roles for modern ClickHouse (SQL access control, 20.5+).
-- Run once as an admin (e.g. /docker-entrypoint-initdb.d, or clickhouse-client --multiquery < roles.sql).
-- The XML users of users.d/distillwatch.xml keep working; these roles are for users managed in SQL
-- (analysts' own accounts, SSO-mapped users):
--     CREATE USER alice IDENTIFIED WITH sha256_password BY '...' DEFAULT ROLE investigator_role;

CREATE DATABASE IF NOT EXISTS distillwatch;

-- Investigators: read everything in distillwatch, change nothing, no DDL.
CREATE ROLE IF NOT EXISTS investigator_role;
GRANT SELECT ON distillwatch.* TO investigator_role;
CREATE SETTINGS PROFILE IF NOT EXISTS investigator_profile
    SETTINGS readonly = 2, max_execution_time = 120, max_result_rows = 1000000
    TO investigator_role;

-- Writers (the sink): insert and create its own tables and views, nothing else.
CREATE ROLE IF NOT EXISTS writer_role;
GRANT SELECT, INSERT, CREATE TABLE, CREATE VIEW ON distillwatch.* TO writer_role;
GRANT CREATE DATABASE ON distillwatch.* TO writer_role;
