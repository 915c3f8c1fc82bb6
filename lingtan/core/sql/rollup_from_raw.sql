-- The marked buckets arrive as three parallel arrays. Each bucket aggregates its own index range
-- of the source (LATERAL): joined as sets, the planner may merge on (meter, quantity) alone and
-- filter the time range row by row, which grows with the series' whole history.
SELECT d.bucket, d.meter_id, d.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       NULL::float8, NULL::float8, NULL::float8
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
CROSS JOIN LATERAL (
    SELECT count(*) AS count, min(r.value) AS min, max(r.value) AS max, avg(r.value) AS avg,
           (array_agg(r.value ORDER BY r.time))[1] AS first,
           (array_agg(r.value ORDER BY r.time DESC))[1] AS last
    FROM readings r
    WHERE r.meter_id = d.meter_id AND r.quantity = d.quantity
      AND r.time >= d.bucket AND r.time < d.bucket + %(width)s
) a
WHERE a.count > 0
