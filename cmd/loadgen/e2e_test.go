package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// The harness against the real service (apitest: the real wiring, a private
// database, BCRYPT_COST=4, no rate limits), for a fraction of a second per
// scenario. Only that everything ran without errors is asserted: numbers
// measured in a test say nothing.

const e2eAdmin = "root@example.com"

// e2eOptions are short settings through the real flag parser.
func e2eOptions(t *testing.T, e *apitest.Env, extra ...string) options {
	t.Helper()
	args := append([]string{"-url", e.Server.URL, "-duration", "100ms", "-warmup", "50ms", "-rounds", "3",
		"-concurrency", "3", "-login-concurrency", "2", "-isolation-login-concurrency", "2", "-users", "2",
		"-bcrypt-cost", "4", "-admin-email", e2eAdmin, "-admin-password", apitest.Password, "-single"}, extra...)
	o, err := parseFlags(args, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestEndToEnd(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Superuser(e2eAdmin)
		jsonPath := filepath.Join(t.TempDir(), "report.json")
		o := e2eOptions(t, e, "-label", string(e.Engine), "-json", jsonPath)
		var out, progress strings.Builder
		rep, err := run(context.Background(), o, noEnv, &out, &progress)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, progress.String())
		}
		md := out.String()
		if len(rep.Errors) > 0 || len(rep.Notes) > 0 {
			t.Errorf("errors or notes in the report:\n%s", md)
		}
		rows := map[string]rowSummary{}
		for _, r := range rep.Rows {
			rows[r.Name] = r
		}
		for _, name := range []string{rowYardstick, scLogin, scLoginUnknown, scRefresh, scMe, rowMeSingle, scSessions,
			scProviderRefresh, scIntrospect, rowIsolationLogin, rowIsolationMe} {
			r, ok := rows[name]
			switch {
			case !ok:
				t.Errorf("no %s row", name)
			case r.OK == 0 || r.Errors != 0 || r.Timeouts != 0 || len(r.RPS) != 3:
				t.Errorf("%s: %d ok, %d errors, %d timeouts, %d rounds", name, r.OK, r.Errors, r.Timeouts, len(r.RPS))
			case !strings.Contains(md, "| "+name+" | "):
				t.Errorf("the table has no %s row", name)
			}
		}
		if len(rep.Rows) != 11 || len(rep.Ceilings) != 2 || rep.Rounds != 3 {
			t.Errorf("%d rows, %d ceilings, %d rounds", len(rep.Rows), len(rep.Ceilings), rep.Rounds)
		}
		raw, err := os.ReadFile(jsonPath)
		if err != nil {
			t.Fatal(err)
		}
		var back report
		if err := json.Unmarshal(raw, &back); err != nil || len(back.Rows) != len(rep.Rows) || back.Label != string(e.Engine) {
			t.Errorf("JSON report (%v): %s", err, raw)
		}
		if t.Failed() {
			t.Logf("report:\n%s\nprogress:\n%s", md, progress.String())
		}
	}, apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"))
}

// Without the authorization server the provider scenarios are skipped with
// a note saying how to turn it on; the others still run.
func TestProviderOffIsSkipped(t *testing.T) {
	e := apitest.New(t, sqlstore.SQLite)
	e.Superuser(e2eAdmin)
	o := e2eOptions(t, e, "-scenarios", "me,introspect,provider-refresh", "-rounds", "1", "-quick", "-warmup", "0s", "-duration", "50ms")
	var out strings.Builder
	rep, err := run(context.Background(), o, noEnv, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "OAUTH_PROVIDER_ENABLED=true") {
		t.Errorf("notes %q", rep.Notes)
	}
	for _, r := range rep.Rows {
		if r.Name == scIntrospect || r.Name == scProviderRefresh {
			t.Errorf("skipped scenario %s has a row", r.Name)
		}
	}
	if !strings.Contains(out.String(), "| me | ") {
		t.Errorf("me did not run:\n%s", out.String())
	}
}

// A server with rate limits on refuses the seeding; loadgen says why.
func TestRateLimitedRegistrationIsExplained(t *testing.T) {
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
	o := e2eOptions(t, e, "-scenarios", "me", "-users", "6")
	// Six registrations against five a minute: all in one window.
	apitest.FreshWindow(t, 20*time.Second, time.Minute)
	_, err := run(context.Background(), o, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_ENABLED=false") {
		t.Fatalf("err %v, want advice to set RATE_LIMIT_ENABLED=false", err)
	}
}
