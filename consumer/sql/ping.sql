-- The readiness check (eye_server_kit::ops::ClickHouseReady).
SELECT 1
