// Command gatehouse runs the Gatehouse identity service and its
// maintenance commands. main only wires; the work lives in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, getenvWithDotEnv(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

// getenvWithDotEnv reads the process environment, falling back to a .env
// file in the working directory when there is one.
func getenvWithDotEnv() func(string) string {
	dotenv := map[string]string{}
	if b, err := os.ReadFile(".env"); err == nil {
		if m, err := config.ParseDotEnv(string(b)); err == nil {
			dotenv = m
		} else {
			fmt.Fprintln(os.Stderr, "gatehouse: ignoring .env:", err)
		}
	}
	return func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return dotenv[k]
	}
}

const usage = `usage: gatehouse [command]

commands:
  serve                      run the service (the default)
  migrate up|down|status     apply, roll back one, or list database migrations
  createsuperuser            create a superuser (-email, -password; a password is generated when omitted)
  keys rotate                add new signing keys; the old ones stay published until their tokens expire
  openapi                    print the OpenAPI document
  version                    print the version
`

// run is the whole program; tests call it with their own arguments,
// environment and writers.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 1 {
		cmd = args[1]
	}
	if cmd == "version" || cmd == "-version" || cmd == "--version" {
		fmt.Fprintln(stdout, "gatehouse", version(getenv))
		return nil
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cfg, warnings, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	for _, w := range warnings {
		logger.Warn(w)
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, logger)
	case "migrate":
		return migrate(ctx, cfg, args[2:], stdout)
	case "createsuperuser":
		return createSuperuser(ctx, cfg, logger, args[2:], stdout)
	case "keys":
		return rotateKeys(ctx, cfg, logger, args[2:], stdout)
	case "openapi":
		doc, err := httpapi.OpenAPI(httpapi.Deps{Logger: logger, Config: cfg}).MarshalJSON()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(doc))
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func version(getenv func(string) string) string {
	v := getenv("VERSION")
	if v == "" {
		v = "1.0.0"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// requestsFinished is logged when every request has been answered during a
// shutdown, before the scheduler stops and the queued emails are sent (which
// may take as long again: see SHUTDOWN_TIMEOUT_SECONDS in docs/DEPLOYMENT.md).
const requestsFinished = "shutting down: requests finished; sending queued emails"

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// a request allocates a few kilobytes that die with it and the live heap is
// small, so collecting at 5× the live heap instead of 2× costs a few
// megabytes under load and gives back about a tenth of the CPU (see
// docs/BENCHMARKS.md). GOGC and GOMEMLIMIT, when set, are Go's as usual.
const defaultGCPercent = 400

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	// Password hashes run on threads of lower priority (internal/password);
	// one more Go processor per hash that may run at once keeps them from
	// occupying the processors requests need, and the kernel, not Go's
	// scheduler, then shares the cores: requests first.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + cfg.Password.Concurrency)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	st, err := openStore(ctx, cfg, cfg.DB.AutoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := app.New(ctx, cfg, logger, st)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.EnsureFirstSuperuser(ctx, logger); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Mail.Run(bg, 2, cfg.HTTP.ShutdownTimeout) })
	wg.Go(func() { a.PATs.Run(bg) }) // personal access tokens' last use
	if cfg.SchedulerEnabled {
		wg.Go(func() { a.Scheduler.Run(bg) })
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("gatehouse listening", "addr", ln.Addr().String(), "database", string(st.Engine()), "version", cfg.Version)

	select {
	case err := <-serveErr:
		stopBG()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "timeout", cfg.HTTP.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if shutdownErr == nil {
		logger.Info(requestsFinished)
	}
	stopBG()
	wg.Wait()
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	logger.Info("shutdown complete")
	return nil
}

func migrate(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: gatehouse migrate up|down|status")
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "up":
		if err := st.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "down":
		m, err := st.MigrateDown(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back %d %s\n", m.Version, m.Name)
		return nil
	case "status":
		list, err := st.MigrationStatuses(ctx)
		if err != nil {
			return err
		}
		for _, m := range list {
			state := "pending"
			if m.Applied {
				state = "applied"
			}
			fmt.Fprintf(stdout, "%05d  %-8s %s\n", m.Version, state, m.Name)
		}
		return nil
	}
	return fmt.Errorf("unknown migrate command %q (want up, down or status)", args[0])
}

func createSuperuser(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("createsuperuser", flag.ContinueOnError)
	fl.SetOutput(stdout)
	email := fl.String("email", "", "email of the new superuser (required)")
	pw := fl.String("password", "", "password (generated and printed when omitted)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("createsuperuser: -email is required")
	}
	st, err := openStore(ctx, cfg, cfg.DB.AutoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	hasher, err := password.NewHasher(cfg.Password)
	if err != nil {
		return err
	}
	users := user.NewService(st, hasher, cfg.DemoMode)
	generated := *pw == ""
	if generated {
		*pw = user.GeneratePassword()
	}
	u, created, err := users.EnsureSuperuser(ctx, *email, *pw)
	if err != nil {
		return fmt.Errorf("createsuperuser: %w", err)
	}
	if !created {
		return fmt.Errorf("createsuperuser: a user with email %s already exists", u.Email)
	}
	fmt.Fprintf(stdout, "created superuser %s (id %s)\n", u.Email, u.ID)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", *pw)
	}
	return nil
}

// openStore connects to the database and, when asked, migrates it.
func openStore(ctx context.Context, cfg config.Config, migrate bool) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// rotateKeys creates new signing keys for the authorization server. Every
// instance picks them up within a minute; tokens signed with the old keys
// keep verifying until OAUTH_KEY_RETENTION_HOURS after the rotation.
func rotateKeys(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "rotate" {
		return errors.New("usage: gatehouse keys rotate")
	}
	st, err := openStore(ctx, cfg, cfg.DB.AutoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := app.New(ctx, cfg, logger, st)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Keys.Ensure(ctx); err != nil {
		return err
	}
	created, err := a.Keys.Rotate(ctx)
	if err != nil {
		return err
	}
	for _, k := range created {
		fmt.Fprintf(stdout, "new %s signing key %s\n", k.Algorithm, k.ID)
	}
	return nil
}
