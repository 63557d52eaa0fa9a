package flows

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Once runs the flow once after it is activated.
type Once struct{}

// Next implements engine.Runtime.
func (Once) Next(last time.Time) time.Time {
	if last.IsZero() {
		return time.Unix(0, 0)
	}
	return time.Time{}
}
func (Once) String() string { return "once" }

// Heartbeat runs the flow every Interval (measured from the previous run's
// creation; a run never overlaps the previous one).
type Heartbeat struct{ Interval time.Duration }

// Next implements engine.Runtime.
func (h Heartbeat) Next(last time.Time) time.Time {
	if last.IsZero() {
		return time.Unix(0, 0)
	}
	return last.Add(h.Interval)
}
func (h Heartbeat) String() string { return "every " + h.Interval.String() }

// Cron runs the flow on a cron schedule (five fields, or descriptors such as
// "@hourly"), in UTC.
type Cron struct{ Spec string }

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next implements engine.Runtime.
func (c Cron) Next(last time.Time) time.Time {
	sched, err := cronParser.Parse(c.Spec)
	if err != nil {
		return time.Time{}
	}
	if last.IsZero() {
		last = time.Now()
	}
	return sched.Next(last.UTC())
}
func (c Cron) String() string { return "cron " + c.Spec }
