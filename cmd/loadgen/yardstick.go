package main

import (
	"io"
	"net"
	"net/http"
	"time"
)

// yardstickBody is the size and shape of a small API answer (a user's id and
// email), so the yardstick costs what the plumbing of such an answer costs.
const yardstickBody = `{"id":"0b0e3f3c-5f7a-4c59-9a43-7d1f5c2e8a61","email":"yardstick@example.com"}`

// yardstick is a bare net/http server in the harness's own process: no
// routing, middleware, decoding, database or tokens. Measured with the same
// client and connections as the scenarios, it shows how fast this machine
// serves HTTP at all, so each scenario's rate can be read as a fraction of
// it, and machines compared.
type yardstick struct {
	URL string
	srv *http.Server
}

func startYardstick() (*yardstick, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(serveYardstick), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // returns when Close is called
	return &yardstick{URL: "http://" + ln.Addr().String() + "/", srv: srv}, nil
}

func (y *yardstick) Close() error { return y.srv.Close() }

func serveYardstick(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, yardstickBody)
}
