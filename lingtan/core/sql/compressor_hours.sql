WITH k AS (SELECT DISTINCT * FROM unnest(%(meters)s::text[], %(hours)s::timestamptz[]) AS k(meter_id, bucket))
INSERT INTO compressor_1h (bucket, meter_id, flow_minutes, air_m3, loaded_minutes, loaded_flow_sum,
                           loaded_kw_minutes, loaded_kw_sum)
SELECT k.bucket, k.meter_id, a.*
FROM k CROSS JOIN LATERAL (
    SELECT {sums} FROM ({minutes}
        AND f.meter_id = k.meter_id AND f.bucket >= k.bucket AND f.bucket < k.bucket + interval '1 hour') m
) a
WHERE a.flow_minutes > 0
ORDER BY k.meter_id, k.bucket
ON CONFLICT (meter_id, bucket) DO UPDATE SET
  flow_minutes = EXCLUDED.flow_minutes, air_m3 = EXCLUDED.air_m3,
  loaded_minutes = EXCLUDED.loaded_minutes, loaded_flow_sum = EXCLUDED.loaded_flow_sum,
  loaded_kw_minutes = EXCLUDED.loaded_kw_minutes, loaded_kw_sum = EXCLUDED.loaded_kw_sum
