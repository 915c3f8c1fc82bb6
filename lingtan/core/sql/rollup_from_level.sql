SELECT d.bucket, d.meter_id, d.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       a.delta, a.covered, a.gap_delta
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
CROSS JOIN LATERAL (
    SELECT sum(s.count) AS count, min(s.min) AS min, max(s.max) AS max,
           sum(s.avg * s.count) / sum(s.count) AS avg, (array_agg(s.first ORDER BY s.bucket))[1] AS first,
           (array_agg(s.last ORDER BY s.bucket DESC))[1] AS last,
           sum(s.delta) AS delta, sum(s.covered) AS covered, sum(s.gap_delta) AS gap_delta
    FROM {source} s
    WHERE s.meter_id = d.meter_id AND s.quantity = d.quantity
      AND s.bucket >= d.bucket AND s.bucket < d.bucket + %(width)s
) a
WHERE a.count > 0
