-- The sums of one set of minutes; compressor_1h holds them per hour, KPI windows add them up.
count(*)::int AS flow_minutes, sum(flow) AS air_m3,
count(*) FILTER (WHERE loaded)::int AS loaded_minutes, sum(flow) FILTER (WHERE loaded) AS loaded_flow_sum,
count(kw) FILTER (WHERE loaded)::int AS loaded_kw_minutes, sum(kw) FILTER (WHERE loaded) AS loaded_kw_sum
