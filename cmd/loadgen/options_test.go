package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseFlagsDefaults(t *testing.T) {
	env := map[string]string{"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": "pw"}
	o, err := parseFlags(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.URL != "http://127.0.0.1:8000" || o.Concurrency != 16 || o.LoginConcurrency != 4 || o.Users != 16 ||
		o.Rounds != 3 || o.Duration != 5*time.Second || o.Timeout != 5*time.Second || o.BcryptCost != 12 || o.Hash != "bcrypt" {
		t.Errorf("defaults %+v", o)
	}
	if o.AdminEmail != "root@example.com" || o.AdminPassword != "pw" {
		t.Errorf("superuser defaults not from the environment: %q %q", o.AdminEmail, o.AdminPassword)
	}
	if !slices.Equal(o.Scenarios, scenarioNames()) {
		t.Errorf("default scenarios %v", o.Scenarios)
	}
}

func TestParseFlagsRounds(t *testing.T) {
	if _, err := parseFlags([]string{"-rounds", "2"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "-quick") {
		t.Errorf("2 rounds without -quick: %v", err)
	}
	o, err := parseFlags([]string{"-rounds", "1", "-quick", "-users", "3", "-url", "http://h:1/"}, noEnv, io.Discard)
	if err != nil || o.Rounds != 1 || o.Users != 3 || o.URL != "http://h:1" {
		t.Errorf("-quick with 1 round: %+v %v", o, err)
	}
}

func TestParseFlagsRefusesNonsense(t *testing.T) {
	for _, args := range [][]string{
		{"-concurrency", "0"},
		{"-duration", "0s"},
		{"-hash", "md5"},
		{"-url", "127.0.0.1:8000"},
		{"-scenarios", "login,nope"},
		{"-scenarios", ","},
		{"stray"},
	} {
		if _, err := parseFlags(args, noEnv, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios(" isolation , login")
	if err != nil {
		t.Fatal(err)
	}
	// Running order, and me comes along with isolation (its baseline).
	if want := []string{scLogin, scMe, scIsolation}; !slices.Equal(got, want) {
		t.Errorf("scenarios %v, want %v", got, want)
	}
}
