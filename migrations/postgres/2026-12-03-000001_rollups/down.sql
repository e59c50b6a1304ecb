DROP FUNCTION build_rollups(TIMESTAMPTZ, INTERVAL);
DROP TABLE rollup_watermark;
DROP TABLE rollup_1h;
DROP TABLE rollup_5m;
