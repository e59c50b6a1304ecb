DROP FUNCTION rebuild_lane_state();
DROP TABLE lane_state;
