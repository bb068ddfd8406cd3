package httpapi

import (
	"context"
	"html"
	"net/http"
	"time"
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
	Status      string                 `json:"status" enum:"healthy,unhealthy"`
	Timestamp   string                 `json:"timestamp" doc:"UTC, ISO 8601, ending in Z"`
	Version     string                 `json:"version"`
	Environment string                 `json:"environment"`
	Checks      map[string]healthCheck `json:"checks"`
}

type healthOutput struct {
	Status int
	Body   healthBody
}

// health is the readiness probe: 200 when the database answers, 503 when
// it does not (reference §5.1).
func (s *server) health(ctx context.Context, _ *struct{}) (*healthOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := &healthOutput{Status: http.StatusOK, Body: healthBody{
		Status: "healthy", Timestamp: s.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		Version: s.Config.Version, Environment: s.Config.Environment,
		Checks: map[string]healthCheck{"database": {Status: "healthy", Message: "Database connection successful"}},
	}}
	if err := s.Ping(ctx); err != nil {
		s.logger.WarnContext(ctx, "health check: database unreachable", "err", err)
		out.Status = http.StatusServiceUnavailable
		out.Body.Status = "unhealthy"
		out.Body.Checks["database"] = healthCheck{Status: "unhealthy", Message: "Database connection failed: database unreachable"}
	}
	return out, nil
}
