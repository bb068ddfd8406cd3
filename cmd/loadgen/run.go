package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// run is the whole harness: yardstick, setup, the rounds, the ceilings
// between them, and the report on stdout (and in o.JSONPath). Progress goes
// to progress. getenv supplies the ARGON2_* settings of the hash ceiling.
func run(ctx context.Context, o options, getenv func(string) string, stdout, progress io.Writer) (*report, error) {
	started := time.Now()
	yard, err := startYardstick()
	if err != nil {
		return nil, fmt.Errorf("start the yardstick: %w", err)
	}
	defer yard.Close()
	client := newClient(o)
	defer client.CloseIdleConnections()
	a := &api{client: client, base: o.URL}

	fx, err := setup(ctx, a, o, progress)
	if err != nil {
		return nil, err
	}
	ceil, err := newCeilings(ctx, o, getenv)
	if err != nil {
		return nil, err
	}
	plan := append([]step{yardstickStep(yard.URL, o.Concurrency)}, buildPlan(a, fx, o)...)
	fmt.Fprintf(progress, "%d steps per round, %d counted rounds of %s each plus a %s warm-up: about %s\n",
		len(plan), o.Rounds, o.Duration, o.Warmup, estimate(o, len(plan)))

	notes := fx.notes
	if o.Warmup > 0 {
		fmt.Fprintln(progress, "warm-up round (not counted)")
		warmupErrs := newErrorLog()
		if _, err := runRound(ctx, a, fx, plan, o.Warmup, warmupErrs, progress); err != nil {
			return nil, err
		}
		for _, e := range warmupErrs.list() {
			notes = append(notes, fmt.Sprintf("warm-up round (not counted): %s ×%d: %s", e.Row, e.Count, e.Message))
		}
	}
	errs := newErrorLog()
	var rounds []round
	for i := range o.Rounds {
		fmt.Fprintf(progress, "round %d of %d\n", i+1, o.Rounds)
		runs, err := runRound(ctx, a, fx, plan, o.Duration, errs, progress)
		if err != nil {
			return nil, err
		}
		r := round{runs: runs}
		if r.hash, err = ceil.measureHash(ctx, o.Duration); err != nil {
			return nil, err
		}
		if r.hs256, err = ceil.measureHS256(ctx, o.Duration); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "  %-18s %10s/s\n  %-18s %10s/s\n", ceil.hashName, formatRate(r.hash.rps()), "HS256 verify", formatRate(r.hs256.rps()))
		rounds = append(rounds, r)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}

	var rows []string
	for _, s := range plan {
		for _, l := range s.loads {
			rows = append(rows, l.row)
		}
	}
	rep := summarize(o, started, rows, rounds, ceil, errs.list(), notes)
	if err := writeMarkdown(stdout, rep); err != nil {
		return nil, err
	}
	if o.JSONPath != "" {
		if err := writeJSON(o.JSONPath, rep); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.JSONPath, err)
		}
	}
	return rep, nil
}

// runRound runs every step of the plan once for d and returns the results
// by row.
func runRound(ctx context.Context, a *api, fx *fixture, plan []step, d time.Duration, errs *errorLog, progress io.Writer) (map[string]runResult, error) {
	runs := map[string]runResult{}
	for _, s := range plan {
		if err := fx.renewReaders(ctx, a); err != nil {
			return nil, err
		}
		for _, r := range measure(ctx, a.client, s, d, errs) {
			runs[r.row] = r
			fmt.Fprintf(progress, "  %-18s %10s rps  p50 %8s ms  errors %d  timeouts %d  shed %d\n",
				r.row, formatRate(r.rps()), formatMs(ms(r.hist.percentile(0.5))), r.errors, r.timeouts, r.shed)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted: %w", err)
		}
	}
	return runs, nil
}

// estimate is how long the rounds will take, setup aside.
func estimate(o options, steps int) time.Duration {
	perRound := time.Duration(steps+2) * o.Duration // + the two ceilings
	return time.Duration(o.Rounds)*perRound + time.Duration(steps)*o.Warmup
}
