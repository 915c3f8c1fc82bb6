-- Per compressor hour, from the 1-minute rollups of air flow, power and state: the air delivered
-- (a minute's mean flow in m³/min is that minute's air) and the sums behind mean power and flow
-- over the minutes loaded throughout. Specific power needs power, flow and state of the same
-- minute, so this cannot be derived from the hourly rollups of each quantity; a KPI window
-- reads these hours and joins minutes only at its ragged edges.
SELECT f.meter_id, f.bucket, f.avg AS flow, p.avg AS kw, s.min = {loaded} AND s.max = {loaded} AS loaded
FROM readings_1m f
LEFT JOIN readings_1m p ON p.meter_id = f.meter_id AND p.bucket = f.bucket AND p.quantity = 'active_power'
LEFT JOIN readings_1m s ON s.meter_id = f.meter_id AND s.bucket = f.bucket AND s.quantity = 'state'
WHERE f.quantity = 'air_flow'
