package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestErrorLogKeepsDistinctMessages(t *testing.T) {
	l := newErrorLog()
	l.add("me", "status 500: boom")
	l.add("me", "status 500:   boom") // the same after shortening
	l.add("login", "status 500: boom")
	l.add("me", strings.Repeat("x", 1000))
	for i := range maxDistinctErrors {
		l.add("sessions", fmt.Sprintf("status 502: %d", i))
	}
	got := l.list()
	if len(got) != maxDistinctErrors+1 {
		t.Fatalf("%d samples, want %d and a line for the rest", len(got), maxDistinctErrors+1)
	}
	if got[0] != (errorSample{Row: "me", Message: "status 500: boom", Count: 2}) || got[1].Row != "login" {
		t.Errorf("first samples %+v %+v", got[0], got[1])
	}
	if len(got[2].Message) > maxShownBodyLen+len("…") {
		t.Errorf("long message kept whole: %d bytes", len(got[2].Message))
	}
	if last := got[len(got)-1]; last.Row != "*" || last.Count != 3 {
		t.Errorf("overflow line %+v, want the 3 errors that did not fit", last)
	}
}

func TestReportMarkdownAndJSON(t *testing.T) {
	hist := &histogram{}
	hist.record(time.Millisecond)
	run := func(row, ceiling string, ok uint64) runResult {
		return runResult{row: row, conns: 2, ceiling: ceiling, elapsed: time.Second, ok: ok, hist: hist}
	}
	rounds := make([]round, 3)
	for i := range rounds {
		rounds[i] = round{runs: map[string]runResult{
			rowYardstick:      run(rowYardstick, "", 1000),
			scLoginUnknown:    run(scLoginUnknown, "", 4),
			scMe:              run(scMe, ceilingHS256, 500),
			rowIsolationMe:    run(rowIsolationMe, ceilingHS256, 100),
			rowIsolationLogin: run(rowIsolationLogin, ceilingHash, 3),
		}, hash: run("hash", "", 8), hs256: run("hs256", "", 100000)}
	}
	o := options{Label: "unit", URL: "http://x", Duration: time.Second, Concurrency: 2}
	rows := []string{rowYardstick, scLoginUnknown, scMe, rowIsolationLogin, rowIsolationMe}
	errs := []errorSample{{Row: scMe, Message: "status 500: `x`", Count: 1}}
	rep := summarize(o, time.Now(), rows, rounds, &ceilings{hashName: "bcrypt cost 4"}, errs, []string{"a note"})

	var b strings.Builder
	if err := writeMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"## Gatehouse loadgen: unit", "| yardstick | 2 | 1000 |", "| me | 2 | 500 |", "| 0.5 | 0.5–0.5 |",
		"| isolation/me |", "| isolation/login |", "| bcrypt cost 4 verify | 2 |", "| HS256 access-token verify |",
		"isolation: me rps under login saturation ÷ me rps alone", "| 0.2 | ≥ 0.3 | **no** |",
		"login-unknown p50 ÷ one in-process hash p50", "| errors + timeouts | 0 | 0 | yes |",
		"- me ×1: `status 500: 'x'`", "- a note"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	path := filepath.Join(t.TempDir(), "r.json")
	if err := writeJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(rows) || back.Rows[2].Name != scMe || back.Rows[2].VsCeiling == nil || back.Label != "unit" ||
		len(back.Rows[2].VsYardstickRounds) != len(rounds) || back.Rows[2].VsYardstickRounds[0] != 0.5 {
		t.Errorf("JSON round trip: %s", raw)
	}
}
