// Package ingest takes every message piles publish over MQTT, decodes and
// checks it, makes it durable in the spool before acknowledging it to the
// broker, and hands it to the safety engine. The spool's writer
// (ingest/influx) then stores it in InfluxDB, at least once.
//
// Two MQTT sessions serve two masters. The storage session is persistent
// (clean session false) and acks a message only once it is fsynced in the
// spool, so a restart or an InfluxDB outage loses nothing: the broker keeps
// what was not acked. The live session feeds the safety engine straight from
// the broker, so a full spool, a slow disk or a dead InfluxDB never delays a
// port cut.
package ingest
