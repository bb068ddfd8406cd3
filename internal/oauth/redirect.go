package oauth

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// ValidateRedirectURI applies the registration rules: absolute, no
// fragment, no user info, and HTTPS unless the host is one of the loopback
// hosts http://127.0.0.1, http://[::1] and http://localhost (issue 5;
// RFC 8252 §7.3).
func ValidateRedirectURI(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || raw == "" || len(raw) > 2048 || !utf8.ValidString(raw):
		return "is not a valid URL"
	case !u.IsAbs() || !hasHost(u):
		return "must be an absolute URL"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not contain a fragment"
	case u.User != nil:
		return "must not contain user information"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "must use https (http is allowed only for loopback addresses)"
	}
	return "must use https (or http on a loopback address)"
}

// hasHost reports a real host: url.Parse accepts "https://:443/cb" (a port
// without a host) and "https://::/cb" (host ":").
func hasHost(u *url.URL) bool {
	h := u.Hostname()
	return h != "" && (!strings.Contains(h, ":") || strings.HasPrefix(u.Host, "["))
}

// isLoopbackHost reports the hosts where a redirect URI may use http:
// localhost and the loopback IP literals, written exactly so. Other
// 127.0.0.0/8 addresses, IPv4-mapped (::ffff:127.0.0.1) or long forms of
// ::1 and zones are refused: the issue allows these three hosts only, and
// one spelling per host keeps exact matching exact.
func isLoopbackHost(h string) bool {
	return h == "localhost" || isLoopbackIP(h)
}

// isLoopbackIP reports the loopback IP literals whose port may vary
// (RFC 8252 §7.3).
func isLoopbackIP(h string) bool {
	return h == "127.0.0.1" || h == "::1"
}

// MatchRedirectURI reports whether requested equals a registered redirect
// URI: exactly, or, for loopback IP literals (127.0.0.1, [::1]), exactly but
// for the port, as RFC 8252 §7.3 allows native apps.
func MatchRedirectURI(registered []string, requested string) bool {
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	q, err := url.Parse(requested)
	// An empty fragment ("…/cb#") parses with Fragment == "" but is still a
	// fragment, which a redirect URI must not have.
	if err != nil || q.Scheme != "http" || !isLoopbackIP(q.Hostname()) || strings.Contains(requested, "#") {
		return false
	}
	for _, r := range registered {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || !isLoopbackIP(u.Hostname()) {
			continue
		}
		if u.Hostname() == q.Hostname() && u.EscapedPath() == q.EscapedPath() && u.RawQuery == q.RawQuery && u.User == nil && q.User == nil && q.Fragment == "" {
			return true
		}
	}
	return false
}

// WithParams adds query parameters to a redirect URI, keeping its own
// query (fix 27: the reference appended "?" blindly).
func WithParams(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	add := url.Values{}
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				add.Add(k, v)
			}
		}
	}
	if e := add.Encode(); e != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + e
		} else {
			u.RawQuery = e
		}
	}
	return u.String()
}

// CanonicalResource canonicalises an RFC 8707 resource indicator: absolute,
// no fragment, scheme and host lower-cased, no trailing slash on the path
// (RFC 8707 §2, MCP). "" when invalid.
func CanonicalResource(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !u.IsAbs() || !hasHost(u) || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return ""
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if (u.Scheme == "https" && strings.HasSuffix(u.Host, ":443")) || (u.Scheme == "http" && strings.HasSuffix(u.Host, ":80")) ||
		strings.HasSuffix(u.Host, ":") { // default or empty port (RFC 3986 §6.2.3)
		u.Host = u.Host[:strings.LastIndexByte(u.Host, ':')]
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	if u.RawPath != "" {
		if p, err := url.PathUnescape(u.RawPath); err != nil || p != u.Path {
			u.RawPath = ""
		}
	}
	return u.String()
}
