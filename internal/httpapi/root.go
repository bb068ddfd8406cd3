package httpapi

import (
	"context"
	"html"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

type htmlOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

func (s *server) root(context.Context, *struct{}) (*htmlOutput, error) {
	name := html.EscapeString(s.Config.ProjectName)
	page := `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>` + name + ` API</title></head>
<body><h1>Welcome to ` + name + ` API</h1>
<p>Interactive documentation: <a href="/docs">/docs</a>. OpenAPI document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
</body></html>`
	return &htmlOutput{ContentType: "text/html; charset=utf-8", Body: []byte(page)}, nil
}

type healthCheck struct {
	Status  string `json:"status" enum:"healthy,unhealthy"`
	Message string `json:"message"`
}

type healthBody struct {
	Status      string                 `json:"status" enum:"healthy,degraded,unhealthy" doc:"unhealthy (503): the database does not answer; degraded (200): Redis does not answer"`
	Timestamp   string                 `json:"timestamp" doc:"UTC, ISO 8601, ending in Z"`
	Version     string                 `json:"version"`
	Environment string                 `json:"environment"`
	Checks      map[string]healthCheck `json:"checks" doc:"database always; redis when REDIS_URL is set"`
}

type healthOutput struct {
	Status int
	Body   healthBody
}

// health is the readiness probe: 200 when the database answers, 503 when
// it does not (reference §5.1). With REDIS_URL, Redis is checked at the
// same time; when it does not answer the instance still serves every
// request correctly (rate limits count in its own memory until Redis is
// back), so it is reported as degraded and stays ready (docs/DECISIONS.md).
func (s *server) health(ctx context.Context, _ *struct{}) (*healthOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var redisErr chan error
	if s.RedisPing != nil {
		redisErr = make(chan error, 1)
		go func() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			redisErr <- s.RedisPing(rctx)
		}()
	}
	out := &healthOutput{Status: http.StatusOK, Body: healthBody{
		Status: "healthy", Timestamp: s.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		Version: s.Config.Version, Environment: s.Config.Environment,
		Checks: map[string]healthCheck{"database": {Status: "healthy", Message: "Database connection successful"}},
	}}
	dbErr := s.Ping(ctx)
	if redisErr != nil {
		out.Body.Checks["redis"] = healthCheck{Status: "healthy", Message: "Redis connection successful"}
		if err := <-redisErr; err != nil {
			s.logger.WarnContext(ctx, "health check: Redis unreachable", "err", err)
			out.Body.Status = "degraded"
			out.Body.Checks["redis"] = healthCheck{Status: "unhealthy",
				Message: "Redis connection failed: rate limits are counted per instance until it answers"}
		}
	}
	if dbErr != nil {
		s.logger.WarnContext(ctx, "health check: database unreachable", "err", dbErr)
		out.Status = http.StatusServiceUnavailable
		out.Body.Status = "unhealthy"
		out.Body.Checks["database"] = healthCheck{Status: "unhealthy", Message: "Database connection failed: database unreachable"}
	}
	return out, nil
}

type liveOutput struct {
	Body struct {
		Status string `json:"status" enum:"alive"`
	}
}

// healthLive is the liveness probe: the process answers HTTP. It checks
// nothing else on purpose: restarting the process cures neither a database
// nor a Redis outage.
func (s *server) healthLive(context.Context, *struct{}) (*liveOutput, error) {
	out := &liveOutput{}
	out.Body.Status = "alive"
	return out, nil
}

// docsHandler serves the interactive docs, whose assets are embedded in the
// binary, and answers everything else under /docs as the API does: an
// unknown path gets the 404 envelope, a method other than GET or HEAD the
// 405 envelope. /docs/oauth2-redirect is the reference's name of the OAuth2
// redirect page that the docs' Authorize dialog returns to.
func (s *server) docsHandler(docs http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeEnvelope(w, newEnvelope(http.StatusMethodNotAllowed, apperr.CodeMethodNotAllowed, "Method Not Allowed", ""))
			return
		}
		if r.URL.Path == "/docs/oauth2-redirect" {
			r = r.Clone(r.Context())
			r.URL.Path += ".html"
		}
		nf := &notFoundCatcher{ResponseWriter: w}
		docs.ServeHTTP(nf, r)
		if nf.caught {
			s.notFound(w, r)
		}
	}
}

// notFoundCatcher passes a response through unless its status is 404, in
// which case it drops it so the caller can answer instead.
type notFoundCatcher struct {
	http.ResponseWriter
	caught, written bool
}

func (c *notFoundCatcher) WriteHeader(status int) {
	if !c.written && status == http.StatusNotFound {
		c.caught = true
		// What the file server set for its own answer; the middleware's
		// headers (security, CORS, request id) stay.
		for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Etag", "Last-Modified"} {
			c.Header().Del(k)
		}
	}
	c.written = true
	if !c.caught {
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *notFoundCatcher) Write(b []byte) (int, error) {
	if !c.written {
		c.WriteHeader(http.StatusOK)
	}
	if c.caught {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}
