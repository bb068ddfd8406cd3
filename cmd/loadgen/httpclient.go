package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits of what a response may make the harness hold or print.
const (
	maxBodyBytes    = 1 << 20
	maxShownBodyLen = 200
)

// newClient returns the one client every request goes through, yardstick
// included, so they pay the same client costs. Keep-alive connections are
// pooled generously enough that every worker keeps its own; proxies from the
// environment are ignored (the server is local), and redirects are returned
// rather than followed (the authorization endpoint answers with them).
func newClient(o options) *http.Client {
	conns := 2*o.Concurrency + o.LoginConcurrency + o.IsolationLogins + 8
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reply is a finished exchange.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// exchange sends req and reads the whole body, so the connection goes back
// to the pool.
func exchange(client *http.Client, req *http.Request) (reply, error) {
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// isTimeout tells timeouts (counted on their own) from other failures.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func jsonRequest(ctx context.Context, method, target, bearer string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	setBearer(req, bearer)
	return req, nil
}

func formRequest(ctx context.Context, target, bearer string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	setBearer(req, bearer)
	return req, nil
}

func getRequest(ctx context.Context, target, bearer string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	setBearer(req, bearer)
	return req, nil
}

func setBearer(req *http.Request, bearer string) {
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
}

// statusError is a response with a status the scenario did not expect.
type statusError struct {
	status int
	body   []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.status, shorten(string(e.body)))
}

// expectStatus returns a statusError unless the reply has status want.
func expectStatus(r reply, want int) error {
	if r.status != want {
		return &statusError{status: r.status, body: r.body}
	}
	return nil
}

// decodeReply checks the status and decodes the JSON body into v.
func decodeReply(r reply, want int, v any) error {
	if err := expectStatus(r, want); err != nil {
		return err
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("status %d with a body that is not the expected JSON (%v): %s", r.status, err, shorten(string(r.body)))
	}
	return nil
}

// shorten keeps printed bodies and messages to one short line.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxShownBodyLen {
		return strings.ToValidUTF8(s[:maxShownBodyLen], "") + "…"
	}
	return s
}
