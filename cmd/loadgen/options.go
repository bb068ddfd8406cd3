package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Scenario names, as given to -scenarios and printed in the report.
const (
	scLogin           = "login"
	scLoginUnknown    = "login-unknown"
	scRefresh         = "refresh"
	scMe              = "me"
	scSessions        = "sessions"
	scProviderRefresh = "provider-refresh"
	scIntrospect      = "introspect"
	scIsolation       = "isolation"

	// Rows that are not scenarios of their own.
	rowYardstick      = "yardstick"
	rowMeSingle       = "me-1conn"
	rowIsolationMe    = "isolation/me"
	rowIsolationLogin = "isolation/login"
)

// minRounds is the fewest counted rounds that give a median worth reading.
const minRounds = 3

// scenarioNames lists every scenario in the order a round runs them:
// isolation last, because its login storm leaves the most behind.
func scenarioNames() []string {
	return []string{scLogin, scLoginUnknown, scRefresh, scMe, scSessions, scProviderRefresh, scIntrospect, scIsolation}
}

// options is the whole configuration of a run.
type options struct {
	URL              string
	Concurrency      int // connections of every scenario but the logins
	LoginConcurrency int
	IsolationLogins  int // login connections of the isolation scenario
	Users            int // seeded users of each pool
	Duration         time.Duration
	Warmup           time.Duration
	Timeout          time.Duration
	Rounds           int
	Quick            bool
	Scenarios        []string
	Single           bool
	Label            string
	JSONPath         string
	AdminEmail       string
	AdminPassword    string
	ProviderScope    string // scope of the provider scenarios' grants
	Hash             string // bcrypt | argon2id, for the in-process ceiling
	BcryptCost       int
}

// selected reports whether any of the named scenarios runs.
func (o options) selected(names ...string) bool {
	for _, n := range names {
		if slices.Contains(o.Scenarios, n) {
			return true
		}
	}
	return false
}

// parseFlags reads the command line. getenv supplies the defaults of the
// superuser credentials, so they can come from the same environment as the
// server's.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadgen [flags]\n\nMeasures a running Gatehouse against a bare net/http yardstick (see docs/BENCHMARKS.md).\nThe server must run with RATE_LIMIT_ENABLED=false, and OAUTH_PROVIDER_ENABLED=true for the provider scenarios.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8000", "base URL of the running Gatehouse")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "connections per scenario (logins excepted)")
	fs.IntVar(&o.LoginConcurrency, "login-concurrency", 4, "connections of the login scenario (login-unknown uses 1, so its latency is one hash without queueing)")
	fs.IntVar(&o.IsolationLogins, "isolation-login-concurrency", 2*runtime.NumCPU(),
		"login connections of the isolation scenario; at least twice the server's PASSWORD_HASH_CONCURRENCY (default: number of CPUs) to saturate hashing")
	fs.IntVar(&o.Users, "users", 0, "users seeded for logins, and again for the me/sessions/provider scenarios (default: -concurrency)")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "duration of each scenario in each round")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "duration of each scenario in the uncounted warm-up round (0: no warm-up)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.IntVar(&o.Rounds, "rounds", minRounds, fmt.Sprintf("counted rounds (at least %d unless -quick)", minRounds))
	fs.BoolVar(&o.Quick, "quick", false, "allow fewer rounds, for a smoke test rather than a measurement")
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios: all, or any of "+strings.Join(scenarioNames(), ","))
	fs.BoolVar(&o.Single, "single", false, "also run me with 1 connection and report its p50")
	fs.StringVar(&o.Label, "label", "", "label of the run in the report, e.g. sqlite or postgres")
	fs.StringVar(&o.JSONPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.AdminEmail, "admin-email", getenv("FIRST_SUPERUSER_EMAIL"), "superuser email, to register the OAuth client of the provider scenarios")
	fs.StringVar(&o.AdminPassword, "admin-password", getenv("FIRST_SUPERUSER_PASSWORD"), "superuser password")
	fs.StringVar(&o.ProviderScope, "provider-scope", "read:users",
		"scope of the provider scenarios' grants; with openid every token response also carries an RS256-signed ID token")
	fs.StringVar(&o.Hash, "hash", "bcrypt", "password hash of the in-process ceiling: bcrypt or argon2id (ARGON2_* from the environment)")
	fs.IntVar(&o.BcryptCost, "bcrypt-cost", 12, "bcrypt cost of the in-process ceiling; match the server's BCRYPT_COST")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.Users == 0 {
		o.Users = o.Concurrency
	}
	o.URL = strings.TrimRight(o.URL, "/")
	var err error
	if o.Scenarios, err = parseScenarios(*scenarios); err != nil {
		return o, err
	}
	return o, o.validate()
}

// parseScenarios turns the -scenarios list into scenario names in running
// order. isolation compares me under load with me alone in the same round,
// so it brings me along.
func parseScenarios(list string) ([]string, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name == "all":
			for _, n := range scenarioNames() {
				want[n] = true
			}
		case slices.Contains(scenarioNames(), name):
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(scenarioNames(), ", "))
		}
	}
	if want[scIsolation] {
		want[scMe] = true
	}
	var out []string
	for _, n := range scenarioNames() {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return out, nil
}

func (o options) validate() error {
	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	check(o.Concurrency >= 1, "-concurrency must be at least 1")
	check(o.LoginConcurrency >= 1, "-login-concurrency must be at least 1")
	check(o.IsolationLogins >= 1, "-isolation-login-concurrency must be at least 1")
	check(o.Users >= 1, "-users must be at least 1")
	check(o.Duration > 0, "-duration must be positive")
	check(o.Warmup >= 0, "-warmup must not be negative")
	check(o.Timeout > 0, "-timeout must be positive")
	check(o.Rounds >= 1, "-rounds must be at least 1")
	check(o.Quick || o.Rounds >= minRounds, "-rounds must be at least %d (medians of fewer rounds mislead); -quick allows fewer", minRounds)
	check(strings.TrimSpace(o.ProviderScope) != "", "-provider-scope must not be empty")
	check(o.Hash == "bcrypt" || o.Hash == "argon2id", "-hash must be bcrypt or argon2id")
	check(strings.HasPrefix(o.URL, "http://") || strings.HasPrefix(o.URL, "https://"), "-url must be an http(s) URL")
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
