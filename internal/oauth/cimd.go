package oauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// MCP 2025-11-25): a client_id that is an HTTPS URL names a JSON document
// describing the client. It is fetched with SSRF defences, cached as a
// client row for as long as its HTTP caching headers allow, and such clients
// are public (PKCE, no secret).

// Bounds of a metadata fetch.
const (
	metadataMaxBytes   = 64 << 10
	metadataTimeout    = 5 * time.Second
	metadataDefaultTTL = 5 * time.Minute
	metadataMaxTTL     = 24 * time.Hour
)

// IsMetadataURL reports whether a client_id names a metadata document.
func IsMetadataURL(clientID string) bool { return strings.HasPrefix(clientID, "https://") }

// MetadataFetcher fetches client metadata documents.
type MetadataFetcher struct {
	allowPrivate bool
	transport    *http.Transport
	client       *http.Client
}

// NewMetadataFetcher returns a fetcher that refuses private, loopback and
// other non-public addresses unless allowPrivate (tests only).
func NewMetadataFetcher(allowPrivate bool) *MetadataFetcher {
	f := &MetadataFetcher{allowPrivate: allowPrivate}
	dialer := &net.Dialer{Timeout: metadataTimeout, Control: f.checkAddress}
	f.transport = &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: metadataTimeout,
		ResponseHeaderTimeout: metadataTimeout, MaxIdleConns: 10, IdleConnTimeout: 30 * time.Second,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	f.client = &http.Client{Transport: f.transport, Timeout: metadataTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }}
	return f
}

// TrustRoots makes the fetcher trust these certificate authorities (tests
// with httptest.NewTLSServer).
func (f *MetadataFetcher) TrustRoots(pool *x509.CertPool) {
	f.transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

// checkAddress runs after DNS resolution, on the address actually dialled,
// so a name that resolves (or rebinds) to a private address is refused.
func (f *MetadataFetcher) checkAddress(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("not an IP address: %s", host)
	}
	if f.allowPrivate || publicAddress(ip.Unmap()) {
		return nil
	}
	return fmt.Errorf("address %s is not public", ip)
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("64:ff9b::/96"),
}

func publicAddress(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// clientMetadata is the part of a metadata document the server uses.
type clientMetadata struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
}

// fetch downloads and validates the document named by rawURL and returns
// it with how long after now it may be used.
func (f *MetadataFetcher) fetch(ctx context.Context, rawURL string, now time.Time) (clientMetadata, time.Duration, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(rawURL, "#") ||
		u.Path == "" || u.Path == "/" || len(rawURL) > 2048 {
		return clientMetadata{}, 0, errors.New("the client_id is not an https URL with a path")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return clientMetadata{}, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return clientMetadata{}, 0, fmt.Errorf("fetching it failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return clientMetadata{}, 0, fmt.Errorf("fetching it answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return clientMetadata{}, 0, fmt.Errorf("it is served as %q, not JSON", mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, metadataMaxBytes+1))
	if err != nil {
		return clientMetadata{}, 0, fmt.Errorf("reading it failed: %w", err)
	}
	if len(body) > metadataMaxBytes {
		return clientMetadata{}, 0, fmt.Errorf("it is larger than %d bytes", metadataMaxBytes)
	}
	var doc clientMetadata
	if err := json.Unmarshal(body, &doc); err != nil {
		return clientMetadata{}, 0, errors.New("it is not a valid JSON object")
	}
	switch {
	case doc.ClientID != rawURL:
		return clientMetadata{}, 0, errors.New("its client_id is not its own URL")
	case len(doc.RedirectURIs) == 0 || len(doc.RedirectURIs) > 20:
		return clientMetadata{}, 0, errors.New("it must list 1 to 20 redirect_uris")
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != "none":
		return clientMetadata{}, 0, errors.New("only token_endpoint_auth_method none is supported")
	}
	// client_name is required (CIMD draft §4): the consent page names the
	// client by it, and a name made up here would read as if checked. As for
	// dynamic registration, it must be plain text of at most 255 characters.
	switch name := strings.TrimSpace(doc.ClientName); {
	case name == "":
		return clientMetadata{}, 0, errors.New("client_name required")
	case utf8.RuneCountInString(name) > 255 || hasControl(name) || strings.ContainsAny(name, "<>"):
		return clientMetadata{}, 0, errors.New("its client_name must be at most 255 characters without control characters or markup")
	}
	for _, r := range doc.RedirectURIs {
		if why := ValidateRedirectURI(r); why != "" {
			return clientMetadata{}, 0, fmt.Errorf("redirect_uri %s %s", truncate(r, 100), why)
		}
	}
	return doc, cacheTTL(resp.Header, now), nil
}

// cacheTTL is how long a fetched document may be used (RFC 9111 §4.2.1),
// between 0 and metadataMaxTTL:
//
//   - Cache-Control no-store or no-cache: 0, fetch again next time;
//   - else Cache-Control max-age (a value too large for the clock counts as
//     the maximum, RFC 9111 §1.2.2);
//   - else Expires, measured from the response's Date (from now without
//     one); an Expires that is not a valid date ("0") is in the past;
//   - else metadataDefaultTTL (no heuristic freshness from Last-Modified).
//
// s-maxage and private are ignored: the server keeps the document for
// itself, on behalf of every user.
func cacheTTL(h http.Header, now time.Time) time.Duration {
	ttl, seen := time.Duration(0), false
	for _, d := range strings.Split(strings.ToLower(strings.Join(h.Values("Cache-Control"), ",")), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.TrimSpace(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if n, ok := deltaSeconds(value); ok && !seen {
				ttl, seen = n, true
			}
		}
	}
	if !seen {
		ttl = metadataDefaultTTL
		if exp := h.Get("Expires"); exp != "" {
			ttl = 0
			if t, err := http.ParseTime(exp); err == nil {
				base := now
				if date, err := http.ParseTime(h.Get("Date")); err == nil {
					base = date
				}
				ttl = t.Sub(base)
			}
		}
	}
	return min(max(ttl, 0), metadataMaxTTL)
}

// deltaSeconds parses a Cache-Control delta-seconds value (digits, quoted
// or not); values beyond a day are a day, so that no value overflows.
func deltaSeconds(v string) (time.Duration, bool) {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	if len(v) > 9 { // more than 31 years
		return metadataMaxTTL, true
	}
	n, _ := strconv.Atoi(v)
	return min(time.Duration(n)*time.Second, metadataMaxTTL), true
}

// metadataClient returns the client of a metadata-document client_id, from
// the cache while it is fresh, else fetched (and cached) anew. Failures are
// invalid_client and store nothing.
func (s *Service) metadataClient(ctx context.Context, clientID string) (Client, error) {
	now := s.now()
	cached, err := s.store.ClientByClientID(ctx, clientID)
	switch {
	case err == nil && cached.RegistrationType != RegisteredByMetadata:
		return Client{}, ErrUnknownClient // an id of another kind that merely looks like a URL
	case err == nil && cached.MetadataExpiresAt != nil && now.Before(*cached.MetadataExpiresAt) && cached.IsActive:
		return cached, nil
	case err != nil && !errors.Is(err, ErrUnknownClient):
		return Client{}, err
	}
	if s.metadata == nil {
		return Client{}, oerr("invalid_client", "Client metadata documents are not supported")
	}
	doc, ttl, err := s.metadata.fetch(ctx, clientID, now)
	if err != nil {
		e := oerr("invalid_client", "The client metadata document cannot be used: "+err.Error())
		e.Err = err
		return Client{}, e
	}
	scopes := dynamicScopes()
	if strings.TrimSpace(doc.Scope) != "" {
		scopes = intersect(ParseScope(doc.Scope), dynamicScopes())
	}
	name := strings.TrimSpace(doc.ClientName) // checked by fetch
	appType := "native"
	if slices.ContainsFunc(doc.RedirectURIs, func(r string) bool { u, _ := url.Parse(r); return u != nil && u.Scheme == "https" }) {
		appType = "web"
	}
	expires := now.Add(ttl)
	c := Client{ID: user.NewID(), ClientID: clientID, Name: truncate(name, 255), Type: Public,
		RedirectURIs: slices.Compact(doc.RedirectURIs), AllowedScopes: scopes, AccessTokenTTL: s.opts.DefaultAccessTTL,
		RefreshTokenTTL: s.opts.DefaultRefreshTTL, IsActive: true, RegistrationType: RegisteredByMetadata,
		ApplicationType: appType, TokenEndpointAuthMethod: "none", MetadataExpiresAt: &expires, CreatedAt: now, UpdatedAt: now}
	if err := s.store.SaveMetadataClient(ctx, c); err != nil {
		return Client{}, err
	}
	return s.store.ClientByClientID(ctx, clientID)
}
