INSERT INTO {table} (bucket, meter_id, quantity, count, min, max, avg, first, last,
                     delta, covered, gap_delta)
{select}
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last,
  delta = EXCLUDED.delta, covered = EXCLUDED.covered, gap_delta = EXCLUDED.gap_delta
