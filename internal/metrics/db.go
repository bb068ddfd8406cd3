package metrics

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
)

// dbCollector reads the database pool's statistics when Prometheus scrapes,
// so the pool is never polled in between. Both engines run under
// database/sql (PostgreSQL through pgx's stdlib driver), so one collector
// serves both.
type dbCollector struct {
	stats func() sql.DBStats

	maxOpen, open, inUse, idle              *prometheus.Desc
	waitCount, waitSeconds                  *prometheus.Desc
	closedMaxIdle, closedIdleTime, closedLT *prometheus.Desc
}

func newDBCollector(stats func() sql.DBStats, engine string) *dbCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("gatehouse_db_"+name, help, nil, prometheus.Labels{"engine": engine})
	}
	return &dbCollector{
		stats:          stats,
		maxOpen:        desc("connections_max", "Maximum number of open connections the pool allows (0: unlimited)."),
		open:           desc("connections_open", "Open connections, in use or idle."),
		inUse:          desc("connections_in_use", "Connections in use by a query or transaction."),
		idle:           desc("connections_idle", "Idle connections."),
		waitCount:      desc("connection_waits_total", "Times a query waited for a connection because the pool was at its maximum."),
		waitSeconds:    desc("connection_wait_seconds_total", "Total time spent waiting for a connection."),
		closedMaxIdle:  desc("connections_closed_max_idle_total", "Connections closed because the pool had too many idle ones."),
		closedIdleTime: desc("connections_closed_max_idle_time_total", "Connections closed because they were idle too long."),
		closedLT:       desc("connections_closed_max_lifetime_total", "Connections closed because they reached their maximum lifetime (db_pool_recycle)."),
	}
}

// Describe implements prometheus.Collector.
func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxOpen, c.open, c.inUse, c.idle, c.waitCount, c.waitSeconds,
		c.closedMaxIdle, c.closedIdleTime, c.closedLT} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.maxOpen, float64(s.MaxOpenConnections))
	gauge(c.open, float64(s.OpenConnections))
	gauge(c.inUse, float64(s.InUse))
	gauge(c.idle, float64(s.Idle))
	counter(c.waitCount, float64(s.WaitCount))
	counter(c.waitSeconds, s.WaitDuration.Seconds())
	counter(c.closedMaxIdle, float64(s.MaxIdleClosed))
	counter(c.closedIdleTime, float64(s.MaxIdleTimeClosed))
	counter(c.closedLT, float64(s.MaxLifetimeClosed))
}
