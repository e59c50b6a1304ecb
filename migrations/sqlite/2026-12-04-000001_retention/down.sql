DROP TABLE retention_watermark;
