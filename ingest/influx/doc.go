// Package influx drains the spool into InfluxDB: it reads batches of records,
// writes their line protocol with one request per batch, and trims the spool
// only once InfluxDB accepted the whole batch.
//
// The writer never drops a point because InfluxDB is down, slow, overloaded
// or misconfigured: network errors and every status other than 400, 413 and
// 422 (including 401/403/404, which an operator must fix) are retried with
// exponential back-off and jitter for as long as it takes, while the spool
// holds the backlog. A 400/413/422 means some line is bad (InfluxDB 1.8 also
// answers 400 to a partial write such as a field type conflict, after writing
// the other points): the writer bisects the batch, by records and then by
// lines, writes every good line, and appends each line refused on its own to
// the dead-letter file, so one bad point neither blocks nor drops the rest.
//
// It speaks the v2 write API (/api/v2/write), which InfluxDB 1.8 serves with
// bucket "db/rp" and token "user:pass", through influxdb-client-go's
// WriteAPIBlocking, which neither batches nor retries on its own.
//
// Reader reads the stored port readings back (InfluxQL over /query), for the
// console's chart of the hour before a restart.
//
// The token, and credentials in the URL, never reach a log line or an error.
package influx
