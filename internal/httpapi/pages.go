package httpapi

import (
	"html/template"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// browserUser returns the user of the built-in pages' browser session.
// (Placeholder until the built-in pages land: nobody is logged in.)
func (s *server) browserUser(r *http.Request) (user.User, time.Time, bool) {
	return user.User{}, time.Time{}, false
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head>
<body><h1>Authorization error</h1><p><strong>{{.Code}}</strong>: {{.Description}}</p></body></html>`))

// renderError shows an error to the user.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, map[string]string{"Code": code, "Description": description})
}
