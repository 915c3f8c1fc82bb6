-- 1-minute buckets of counter quantities: the same aggregates as rollup_from_raw.sql plus interval energy,
-- by the rules in lingtan/core/energy.py (kept in step with energy._pair: same operations, same order).
-- Work goes by time ranges of one series, not by minute: marked minutes close together form one
-- range, widened to the minutes whose energy depends on its samples; every minute in a range is
-- re-materialised from one index scan. Returns the keys written.
WITH d AS (
    SELECT *, bucket - lag(bucket) OVER (PARTITION BY meter_id, quantity ORDER BY bucket)
              > %(join)s AS new
    FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
         AS d(meter_id, quantity, bucket)
),
islands AS (
    SELECT meter_id, quantity, min(bucket) AS lo, max(bucket) + interval '1 minute' AS hi
    FROM (SELECT *, count(*) FILTER (WHERE new) OVER (PARTITION BY meter_id, quantity
                                                     ORDER BY bucket) AS island FROM d) d
    GROUP BY meter_id, quantity, island
),
-- an island holding samples changes the minute holding the sample before it and those holding
-- the next MAX_RUN + 1 samples after it; no samples lie in between, so widening reads few rows
widened AS (
    SELECT i.meter_id, i.quantity,
           CASE WHEN s.any THEN coalesce(date_bin('1 minute', b.time, %(origin)s), i.lo) ELSE i.lo END AS lo,
           CASE WHEN s.any THEN coalesce(date_bin('1 minute', a.time, %(origin)s) + interval '1 minute', i.hi)
                ELSE i.hi END AS hi
    FROM islands i
    CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM readings r WHERE r.meter_id = i.meter_id
                        AND r.quantity = i.quantity AND r.time >= i.lo AND r.time < i.hi
                        AND {sample}) AS any) s
    LEFT JOIN LATERAL (SELECT r.time FROM readings r
                       WHERE r.meter_id = i.meter_id AND r.quantity = i.quantity AND r.time < i.lo
                         AND {sample}
                       ORDER BY r.time DESC LIMIT 1) b ON s.any
    LEFT JOIN LATERAL (SELECT max(n.time) AS time FROM (
                           SELECT r.time FROM readings r
                           WHERE r.meter_id = i.meter_id AND r.quantity = i.quantity
                             AND r.time >= i.hi AND {sample}
                           ORDER BY r.time LIMIT %(ahead)s) n) a ON s.any
),
-- widened islands that overlap are merged, so no minute is written twice
ranges AS (
    SELECT row_number() OVER (ORDER BY g.meter_id, g.quantity, g.lo) AS rid, g.*,
           (m.params->>'counter_wrap')::float8 AS wrap, m.params->'exchanges' AS exchanges,
           CASE WHEN g.quantity = ANY(%(kwh)s::text[]) THEN (m.params->>'rated_power_kw')::float8
           END AS rated
    FROM (
        SELECT meter_id, quantity, min(lo) AS lo, max(hi) AS hi FROM (
            SELECT *, count(*) FILTER (WHERE new) OVER (PARTITION BY meter_id, quantity ORDER BY lo)
                      AS grp
            FROM (SELECT *, lo > max(hi) OVER (PARTITION BY meter_id, quantity ORDER BY lo
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS new
                  FROM widened) w
        ) w GROUP BY meter_id, quantity, grp
    ) g LEFT JOIN meters m ON m.id = g.meter_id
),
-- per range: its readings, the samples before it that can pair with or flag its first sample,
-- the sample after it that flags its last one
pts AS (
    SELECT g.rid, x.time, x.value, x.sample, x.inside
    FROM ranges g CROSS JOIN LATERAL (
        (SELECT r.time, r.value, true AS sample, false AS inside FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity AND r.time < g.lo AND {sample}
         ORDER BY r.time DESC LIMIT %(behind)s)
        UNION ALL
        (SELECT r.time, r.value, {sample}, true FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity
           AND r.time >= g.lo AND r.time < g.hi)
        UNION ALL
        (SELECT r.time, r.value, true, false FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity AND r.time >= g.hi AND {sample}
         ORDER BY r.time LIMIT 1)
    ) x
),
agg AS (
    SELECT rid, date_bin('1 minute', time, %(origin)s) AS bucket, count(*) AS count,
           min(value) AS min, max(value) AS max, avg(value) AS avg,
           (array_agg(value ORDER BY time))[1] AS first,
           (array_agg(value ORDER BY time DESC))[1] AS last
    FROM pts WHERE inside GROUP BY 1, 2
),
-- rule 2; the earliest sample fetched has no known predecessor and counts as kept, which can only
-- make it the partner of a pair that rule 3 breaks anyway (behind = MAX_RUN + 2)
flagged AS (
    SELECT rid, time, value, inside, row_number() OVER w AS rn,
           coalesce((lag(value) OVER w <= lead(value) OVER w AND lead(value) OVER w < value)
                    OR (lead(value) OVER w >= lag(value) OVER w AND lag(value) OVER w > value),
                    false) AS spike
    FROM pts WHERE sample
    WINDOW w AS (PARTITION BY rid ORDER BY time)
),
pairs AS (
    SELECT rid, time, value, inside, rn,
           lag(time) OVER w AS ptime, lag(value) OVER w AS pvalue, lag(rn) OVER w AS prn
    FROM flagged WHERE NOT spike
    WINDOW w AS (PARTITION BY rid ORDER BY time)
),
-- rule 3: the increase of a count, rollover or recorded exchange (counted) or of a reset; both
-- NULL otherwise
steps AS (
    SELECT p.rid, date_bin('1 minute', p.time, %(origin)s) AS bucket,
           extract(epoch FROM p.time - p.ptime)::float8 AS gap_s, g.rated,
           CASE WHEN x.old_final IS NOT NULL
                    THEN greatest(x.old_final - p.pvalue, 0) + greatest(p.value - x.new_initial, 0)
                WHEN p.value >= p.pvalue THEN p.value - p.pvalue
                WHEN g.wrap IS NOT NULL AND p.pvalue > g.wrap / 2 AND p.value < g.wrap / 2
                    THEN g.wrap - p.pvalue + p.value
           END AS counted,
           CASE WHEN x.old_final IS NOT NULL OR p.value >= p.pvalue THEN NULL
                WHEN g.wrap IS NOT NULL AND p.pvalue > g.wrap / 2 AND p.value < g.wrap / 2 THEN NULL
                WHEN p.value <= p.pvalue / 2 THEN greatest(p.value, 0)
           END AS reset
    FROM pairs p JOIN ranges g USING (rid)
    -- a recorded meter exchange inside the pair: the energy across the swap is known
    LEFT JOIN LATERAL (
        SELECT (e->>'old_final')::float8 AS old_final, (e->>'new_initial')::float8 AS new_initial
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(g.exchanges) = 'array' THEN g.exchanges
                                       ELSE '[]'::jsonb END) e
        WHERE e->>'quantity' = g.quantity AND (e->>'time')::timestamptz >= p.ptime
          AND (e->>'time')::timestamptz < p.time
        ORDER BY (e->>'time')::timestamptz LIMIT 1
    ) x ON true
    WHERE p.inside AND p.ptime IS NOT NULL AND p.rn - p.prn - 1 <= %(max_run)s
),
-- rated power: an impossible increase counts nowhere
possible AS (
    SELECT rid, bucket, gap_s, reset, coalesce(counted, reset) AS increase FROM steps
    WHERE coalesce(counted, reset) IS NOT NULL
      AND (rated IS NULL OR coalesce(counted, reset)
                            <= %(factor)s * rated * gap_s / 3600.0::float8 + %(allowance)s)
),
energy AS (
    SELECT rid, bucket,
           sum(increase) FILTER (WHERE reset IS NULL AND gap_s <= %(max_gap)s) AS delta,
           sum(gap_s) FILTER (WHERE reset IS NULL AND gap_s <= %(max_gap)s) AS covered,
           sum(increase) FILTER (WHERE reset IS NOT NULL OR gap_s > %(max_gap)s) AS gap_delta
    FROM possible GROUP BY rid, bucket
)
INSERT INTO readings_1m (bucket, meter_id, quantity, count, min, max, avg, first, last,
                         delta, covered, gap_delta)
SELECT a.bucket, g.meter_id, g.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       coalesce(e.delta, 0), coalesce(e.covered, 0), coalesce(e.gap_delta, 0)
FROM agg a JOIN ranges g USING (rid) LEFT JOIN energy e USING (rid, bucket)
ORDER BY a.rid, a.bucket
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last,
  delta = EXCLUDED.delta, covered = EXCLUDED.covered, gap_delta = EXCLUDED.gap_delta
RETURNING meter_id, quantity, bucket
