DROP FUNCTION rebuild_rollups();
DROP TABLE rollup_1h;
DROP TABLE rollup_5m;
