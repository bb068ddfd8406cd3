package oauth

import (
	"net/http"
	"testing"
	"time"
)

// TestCacheTTL: how long a client metadata document is used before it is
// fetched again, from its response's caching headers (RFC 9111 §4.2.1),
// always between 0 and metadataMaxTTL.
func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"no caching headers", http.Header{}, metadataDefaultTTL},
		{"max-age", http.Header{"Cache-Control": {"max-age=60"}}, time.Minute},
		{"max-age among other directives", http.Header{"Cache-Control": {"public, Max-Age=120 , must-revalidate"}}, 2 * time.Minute},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="90"`}}, 90 * time.Second},
		{"max-age on a second field line", http.Header{"Cache-Control": {"public", "max-age=30"}}, 30 * time.Second},
		{"first max-age wins", http.Header{"Cache-Control": {"max-age=10, max-age=600"}}, 10 * time.Second},
		{"max-age=0", http.Header{"Cache-Control": {"max-age=0"}}, 0},
		{"no-store", http.Header{"Cache-Control": {"max-age=600, no-store"}}, 0},
		{"no-cache", http.Header{"Cache-Control": {"no-cache"}}, 0},
		{"no-cache with a field name", http.Header{"Cache-Control": {`no-cache="set-cookie", max-age=600`}}, 0},
		{"max-age above the maximum", http.Header{"Cache-Control": {"max-age=31536000"}}, metadataMaxTTL},
		{"max-age that overflows a Duration", http.Header{"Cache-Control": {"max-age=10000000000"}}, metadataMaxTTL},
		{"max-age beyond int64", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, metadataMaxTTL},
		{"negative max-age ignored", http.Header{"Cache-Control": {"max-age=-5"}}, metadataDefaultTTL},
		{"garbage max-age ignored", http.Header{"Cache-Control": {"max-age=soon"}}, metadataDefaultTTL},
		{"Expires without Date", http.Header{"Expires": {at(10 * time.Minute)}}, 10 * time.Minute},
		{"Expires measured from Date", http.Header{"Expires": {at(10 * time.Minute)}, "Date": {at(-5 * time.Minute)}}, 15 * time.Minute},
		{"Expires in the past", http.Header{"Expires": {at(-time.Hour)}}, 0},
		{"Expires 0", http.Header{"Expires": {"0"}}, 0},
		{"Expires not a date", http.Header{"Expires": {"tomorrow"}}, 0},
		{"Expires above the maximum", http.Header{"Expires": {at(30 * 24 * time.Hour)}}, metadataMaxTTL},
		{"Expires in an obsolete date format", http.Header{"Expires": {now.Add(time.Hour).Format(time.RFC850)}}, time.Hour},
		{"max-age wins over Expires", http.Header{"Cache-Control": {"max-age=60"}, "Expires": {at(time.Hour)}}, time.Minute},
		{"no-store wins over Expires", http.Header{"Cache-Control": {"no-store"}, "Expires": {at(time.Hour)}}, 0},
		{"Cache-Control without max-age leaves Expires", http.Header{"Cache-Control": {"public"}, "Expires": {at(time.Hour)}}, time.Hour},
	} {
		if got := cacheTTL(tc.header, now); got != tc.want {
			t.Errorf("%s: cacheTTL(%v) = %v, want %v", tc.name, tc.header, got, tc.want)
		}
	}
}
