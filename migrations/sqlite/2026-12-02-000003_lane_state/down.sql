DROP TABLE lane_state;
