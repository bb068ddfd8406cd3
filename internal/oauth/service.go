package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Store is what the authorization server needs from storage.
type Store interface {
	UserByID(ctx context.Context, id string) (user.User, error)

	ClientByClientID(ctx context.Context, clientID string) (Client, error) // ErrUnknownClient
	// TokenClient is ClientByClientID with only the fields Authenticate and
	// issuing tokens use (identity, type, secret hash, state, lifetimes).
	TokenClient(ctx context.Context, clientID string) (Client, error) // ErrUnknownClient
	// TokenClientWithGrant is TokenClient together with GrantLive of an
	// access token's grant, in one read (introspection).
	TokenClientWithGrant(ctx context.Context, clientID, refreshID, userID string) (Client, bool, error) // ErrUnknownClient
	CreateClient(ctx context.Context, c Client) error
	// SaveMetadataClient inserts or refreshes the cached client of a client
	// metadata document.
	SaveMetadataClient(ctx context.Context, c Client) error
	ActiveClients(ctx context.Context) ([]Client, error)
	DeleteClient(ctx context.Context, clientID string) error
	ReplaceClientSecretHash(ctx context.Context, clientID, oldHash, newHash string) error

	CreateCode(ctx context.Context, c Code) error
	CodeByHash(ctx context.Context, hash string) (Code, error) // ErrUnknownCode
	// RedeemCode marks the code used and stores the first refresh token of
	// its family in one transaction; false (nothing stored) when the code was
	// used already. A concurrent replay therefore always finds the family to
	// revoke.
	RedeemCode(ctx context.Context, codeID string, first RefreshToken, now time.Time) (bool, error)

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	RefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error) // ErrUnknownRefresh
	// RefreshTokenWithUser is RefreshTokenByHash with the token's user
	// (deleted users included).
	RefreshTokenWithUser(ctx context.Context, hash string) (RefreshToken, user.User, error) // ErrUnknownRefresh
	RefreshTokenByID(ctx context.Context, id string) (RefreshToken, error)                  // ErrUnknownRefresh
	// GrantLive reports whether refresh-token row refreshID is unrevoked and
	// belongs to userID, who is active and not deleted.
	GrantLive(ctx context.Context, refreshID, userID string) (bool, error)
	// RotateRefreshToken marks old rotated and stores next, atomically;
	// false (and nothing stored) when old was already rotated or revoked.
	RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, now time.Time) (bool, error)
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error)
	RevokeUserClientRefreshTokens(ctx context.Context, userID, clientID string, now time.Time) (int, error)
	// FamilyActive reports whether a family has not been revoked.
	FamilyActive(ctx context.Context, familyID string) (bool, error)

	Consent(ctx context.Context, userID, clientID string) (Consent, error) // ErrNoConsent
	SaveConsent(ctx context.Context, c Consent) error
	ConsentsOfUser(ctx context.Context, userID string) ([]Consent, error)
	DeleteConsent(ctx context.Context, userID, clientID string) error // ErrNoConsent
}

// Sentinel lookups of the store.
var (
	ErrUnknownClient  = errors.New("unknown client")
	ErrUnknownCode    = errors.New("unknown authorization code")
	ErrUnknownRefresh = errors.New("unknown refresh token")
	ErrNoConsent      = errors.New("no consent")
)

// Options configure the Service.
type Options struct {
	Issuer            string
	Resources         []string // canonical resource indicators this server protects
	CodeTTL           time.Duration
	DefaultAccessTTL  time.Duration
	DefaultRefreshTTL time.Duration
	ConsentTTL        time.Duration // a consent's lifetime from its last grant; 0: consents never expire
}

// Service is the authorization server.
type Service struct {
	store    Store
	tokens   *TokenSigner
	metadata *MetadataFetcher // nil: client metadata documents are not supported
	opts     Options
	logger   *slog.Logger
	Now      func() time.Time
}

// NewService returns the authorization server.
func NewService(store Store, tokens *TokenSigner, opts Options, logger *slog.Logger) *Service {
	// Requests are compared in canonical form (RFC 8707 §2), so the
	// configured resources are too: an issuer written with an upper-case
	// host or a default port still matches what clients send.
	canonical := make([]string, 0, len(opts.Resources))
	for _, r := range opts.Resources {
		if c := CanonicalResource(r); c != "" && !slices.Contains(canonical, c) {
			canonical = append(canonical, c)
		}
	}
	opts.Resources = canonical
	return &Service{store: store, tokens: tokens, opts: opts, logger: logger, Now: time.Now}
}

// UseMetadataDocuments enables client ID metadata documents.
func (s *Service) UseMetadataDocuments(f *MetadataFetcher) { s.metadata = f }

// MetadataFetcher returns the fetcher of client metadata documents (tests
// give it their TLS test server's certificate).
func (s *Service) MetadataFetcher() *MetadataFetcher { return s.metadata }

// Issuer is the issuer identifier (no trailing slash).
func (s *Service) Issuer() string { return s.opts.Issuer }

// Tokens gives access to token verification for resource servers.
func (s *Service) Tokens() *TokenSigner { return s.tokens }

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// --- authorization requests -------------------------------------------------

// AuthRequest is an authorization request (reference §6B.3).
type AuthRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	Resources           []string // RFC 8707 resource indicators, canonical once checked
	Prompt              string
}

// ParseAuthRequest reads an authorization request from query or form
// values.
func ParseAuthRequest(v url.Values) AuthRequest {
	return AuthRequest{ResponseType: v.Get("response_type"), ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"),
		Scope: v.Get("scope"), State: v.Get("state"), CodeChallenge: v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"), Nonce: v.Get("nonce"), Resources: v["resource"], Prompt: v.Get("prompt")}
}

// Values is the inverse of ParseAuthRequest (for redirects to the login and
// consent pages).
func (r AuthRequest) Values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"response_type": r.ResponseType, "client_id": r.ClientID, "redirect_uri": r.RedirectURI,
		"scope": r.Scope, "state": r.State, "code_challenge": r.CodeChallenge, "code_challenge_method": r.CodeChallengeMethod,
		"nonce": r.Nonce, "prompt": r.Prompt} {
		if x != "" {
			v.Set(k, x)
		}
	}
	for _, res := range r.Resources {
		v.Add("resource", res)
	}
	return v
}

// AuthError is an error of the authorization endpoint. With Redirect set the
// client and redirect URI were valid, and the error may go back to the
// client (RFC 6749 §4.1.2.1) if MayRedirectErrors allows it; otherwise the
// user sees an error page (no open redirector).
type AuthError struct {
	Err      *Error
	Redirect bool
	Client   Client // the client of a Redirect error
}

func (e *AuthError) Error() string { return e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// Checked is a validated authorization request.
type Checked struct {
	Req    AuthRequest
	Client Client
	Scopes []string // requested ∩ allowed (all allowed when none requested)
}

// CheckAuthRequest validates an authorization request: first the client and
// redirect URI (errors shown to the user), then the rest (errors sent back
// to the client).
func (s *Service) CheckAuthRequest(ctx context.Context, r AuthRequest) (Checked, error) {
	fatal := func(code, desc string) (Checked, error) {
		e := oerr(code, desc)
		e.Status = http.StatusBadRequest // shown to the user, whatever the code (even invalid_client)
		return Checked{}, &AuthError{Err: e}
	}
	var c Client
	back := func(code, desc string) (Checked, error) {
		return Checked{}, &AuthError{Err: oerr(code, desc), Redirect: true, Client: c}
	}
	if r.ClientID == "" {
		return fatal("invalid_request", "client_id required")
	}
	c, err := s.client(ctx, r.ClientID) // the c back() reports
	var oe *Error
	switch {
	case errors.Is(err, ErrUnknownClient):
		return fatal("invalid_client", "Unknown client_id")
	case errors.As(err, &oe):
		return fatal(oe.Code, oe.Description)
	case err != nil:
		return Checked{}, err
	}
	if len(c.RedirectURIs) == 0 {
		return fatal("invalid_request", "Client has no registered redirect URIs")
	}
	if r.RedirectURI == "" || !wellFormed(r.RedirectURI) || !MatchRedirectURI(c.RedirectURIs, r.RedirectURI) {
		return fatal("invalid_request", "Invalid redirect_uri")
	}
	if r.ResponseType != "code" {
		return back("unsupported_response_type", "response_type must be 'code'")
	}
	if r.CodeChallengeMethod != "" && r.CodeChallengeMethod != "S256" {
		return back("invalid_request", "code_challenge_method must be 'S256' (plain is not supported)")
	}
	if r.CodeChallenge != "" && r.CodeChallengeMethod == "" {
		return back("invalid_request", "code_challenge_method must be 'S256' (plain is not supported)")
	}
	if r.CodeChallenge != "" && !validChallenge(r.CodeChallenge) {
		return back("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
	}
	if c.Type == Public && r.CodeChallenge == "" {
		return back("invalid_request", "PKCE with S256 is required for public clients")
	}
	if len(r.State) > 1024 || len(r.Nonce) > 512 {
		return back("invalid_request", "state or nonce too long")
	}
	if !wellFormed(r.State) || !wellFormed(r.Nonce) || !wellFormed(r.Scope) {
		return back("invalid_request", "state, nonce and scope must be text without control characters")
	}
	resources, rerr := s.checkResources(r.Resources)
	if rerr != nil {
		return Checked{}, &AuthError{Err: rerr, Redirect: true, Client: c}
	}
	if r.Prompt != "" && !slices.Contains([]string{"none", "login", "consent"}, r.Prompt) {
		return back("invalid_request", "prompt must be none, login or consent")
	}
	scopes := c.AllowedScopes
	if strings.TrimSpace(r.Scope) != "" {
		scopes = intersect(ParseScope(r.Scope), c.AllowedScopes)
	}
	if len(scopes) == 0 {
		return back("invalid_scope", "None of the requested scopes are allowed for this client")
	}
	r.Resources = resources
	return Checked{Req: r, Client: c, Scopes: ParseScope(JoinScope(scopes))}, nil
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// checkResources canonicalises RFC 8707 resource indicators and accepts
// only the resources this server protects.
func (s *Service) checkResources(raw []string) ([]string, *Error) {
	var out []string
	for _, r := range raw {
		c := CanonicalResource(r)
		if c == "" {
			return nil, oerr("invalid_target", "resource must be an absolute URI without a fragment")
		}
		if !slices.Contains(s.opts.Resources, c) {
			return nil, oerr("invalid_target", "resource "+c+" is not served by this authorization server")
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) > 10 {
		return nil, oerr("invalid_target", "too many resources")
	}
	return out, nil
}

// narrowResources picks the access token's audience: the requested
// resources, which must all belong to the grant (a token request may narrow
// but never widen it), or the whole grant when none are requested.
func narrowResources(grant, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return grant, nil
	}
	var out []string
	for _, r := range requested {
		c := CanonicalResource(r)
		if c == "" || !slices.Contains(grant, c) {
			return nil, oerr("invalid_target", "resource must be one the authorization was granted for")
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// ErrorRedirect is the URL sending an authorization error to the client,
// with state and iss (RFC 9207).
func (s *Service) ErrorRedirect(r AuthRequest, e *Error) string {
	return WithParams(r.RedirectURI, url.Values{"error": {e.Code}, "error_description": {e.Description},
		"state": {r.State}, "iss": {s.opts.Issuer}})
}

// MayRedirectErrors reports whether an error of an authorization request of
// client c (whose redirect URI checked out) may be sent to that redirect URI
// while userID ("" for nobody signed in) has not answered a consent page in
// this request. A client registered by an administrator may; a client that
// registered itself (dynamic registration) or is described by its own
// metadata document may only once the user has consented to it before:
// anyone can create such a client with any redirect URI, so redirecting its
// errors at once would make the authorization endpoint an open redirector
// (OAuth 2.1 §7.12.2, RFC 9700 §4.11.2). The user's own answer on the
// consent page (Deny included) always goes back to the client.
func (s *Service) MayRedirectErrors(ctx context.Context, userID string, c Client) (bool, error) {
	if c.RegistrationType == RegisteredByAdmin {
		return true, nil
	}
	if userID == "" || c.ClientID == "" {
		return false, nil
	}
	_, err := s.store.Consent(ctx, userID, c.ClientID)
	switch {
	case errors.Is(err, ErrNoConsent):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// NeedsConsent reports whether the user must (still) consent to the scopes.
func (s *Service) NeedsConsent(ctx context.Context, userID string, c Checked) (bool, error) {
	if c.Req.Prompt == "consent" {
		return true, nil
	}
	consent, err := s.store.Consent(ctx, userID, c.Client.ClientID)
	if errors.Is(err, ErrNoConsent) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return s.consentExpired(consent) || !covers(consent.Scopes, c.Scopes), nil
}

// consentExpired reports whether a consent was last granted longer than
// ConsentTTL ago: it then counts as missing, and the user is asked again.
func (s *Service) consentExpired(c Consent) bool {
	return s.opts.ConsentTTL > 0 && !s.now().Before(c.UpdatedAt.Add(s.opts.ConsentTTL))
}

// Approve issues an authorization code for scopes (a subset of c.Scopes)
// and returns the redirect to the client.
func (s *Service) Approve(ctx context.Context, userID string, authTime time.Time, c Checked, scopes []string) (string, error) {
	// The admin scope is granted to superusers only (RFC 6749 §3.3 lets the
	// server issue less than asked; the token response names the scopes).
	if slices.Contains(scopes, "admin") {
		u, err := s.store.UserByID(ctx, userID)
		if err != nil {
			return "", err
		}
		if !u.IsSuperuser {
			scopes = slices.DeleteFunc(slices.Clone(scopes), func(v string) bool { return v == "admin" })
		}
		if len(scopes) == 0 {
			return s.ErrorRedirect(c.Req, oerr("invalid_scope", "The admin scope is for superusers only")), nil
		}
	}
	code := token.RandomSecret()
	now := s.now()
	rec := Code{ID: user.NewID(), Hash: token.HashSecret(code), ClientID: c.Client.ClientID, UserID: userID,
		RedirectURI: c.Req.RedirectURI, Scope: JoinScope(scopes), CodeChallenge: c.Req.CodeChallenge,
		CodeChallengeMethod: c.Req.CodeChallengeMethod, Nonce: c.Req.Nonce, Resource: strings.Join(c.Req.Resources, " "),
		AuthTime: authTime.UTC().Truncate(time.Second), ExpiresAt: now.Add(s.opts.CodeTTL), CreatedAt: now}
	if err := s.store.CreateCode(ctx, rec); err != nil {
		return "", err
	}
	return WithParams(c.Req.RedirectURI, url.Values{"code": {code}, "state": {c.Req.State}, "iss": {s.opts.Issuer}}), nil
}

// Decide records the user's answer on the consent screen and returns where
// to send the browser: the client with a code, or with access_denied or
// invalid_scope. chosen narrows the scopes (nil keeps all requested).
func (s *Service) Decide(ctx context.Context, userID string, authTime time.Time, c Checked, approved bool, chosen []string) (string, error) {
	if !approved {
		return s.ErrorRedirect(c.Req, oerr("access_denied", "User denied authorization")), nil
	}
	scopes := c.Scopes
	if chosen != nil {
		scopes = intersect(chosen, c.Scopes)
	}
	if len(scopes) == 0 {
		return s.ErrorRedirect(c.Req, oerr("invalid_scope", "None of the requested scopes are allowed for this client")), nil
	}
	now := s.now()
	prev, err := s.store.Consent(ctx, userID, c.Client.ClientID)
	switch {
	case errors.Is(err, ErrNoConsent):
		prev = Consent{UserID: userID, ClientID: c.Client.ClientID, CreatedAt: now}
	case err != nil:
		return "", err
	case s.consentExpired(prev):
		// An expired consent is replaced, not added to: the user granted anew.
		if err := s.store.DeleteConsent(ctx, userID, c.Client.ClientID); err != nil && !errors.Is(err, ErrNoConsent) {
			return "", err
		}
		prev = Consent{UserID: userID, ClientID: c.Client.ClientID, CreatedAt: now}
	}
	prev.Scopes = ParseScope(JoinScope(append(prev.Scopes, scopes...)))
	prev.UpdatedAt = now
	if err := s.store.SaveConsent(ctx, prev); err != nil {
		return "", err
	}
	return s.Approve(ctx, userID, authTime, c, scopes)
}

// --- clients ---------------------------------------------------------------

// client returns an active client: registered, or described by a client
// metadata document (an https client_id).
func (s *Service) client(ctx context.Context, clientID string) (Client, error) {
	return s.findClient(ctx, clientID, s.store.ClientByClientID)
}

func (s *Service) findClient(ctx context.Context, clientID string, load func(context.Context, string) (Client, error)) (Client, error) {
	// A client_id no client can have (too long, not text) is unknown
	// without asking the database, which cannot even compare some of them.
	if len(clientID) > 2048 || !wellFormed(clientID) {
		return Client{}, ErrUnknownClient
	}
	if IsMetadataURL(clientID) {
		return s.metadataClient(ctx, clientID)
	}
	c, err := load(ctx, clientID)
	if err != nil {
		return Client{}, err
	}
	if !c.IsActive || c.RegistrationType == RegisteredByMetadata {
		return Client{}, ErrUnknownClient
	}
	return c, nil
}

// ClientCredentials are what a request presented to authenticate a client.
type ClientCredentials struct {
	ClientID string
	Secret   string
	HasBasic bool
	// Conflict is set when the Basic header and the form name different
	// clients.
	Conflict bool
}

// Authenticate checks client credentials (fix 25: before any code or token
// is looked at). Public clients present only their id.
func (s *Service) Authenticate(ctx context.Context, cr ClientCredentials) (Client, error) {
	return s.authenticate(ctx, cr, s.store.TokenClient)
}

// authenticate is Authenticate with the client read by load (for clients
// whose client_id is not a metadata document's URL).
func (s *Service) authenticate(ctx context.Context, cr ClientCredentials, load func(context.Context, string) (Client, error)) (Client, error) {
	if cr.Conflict {
		return Client{}, oerr("invalid_request", "Client credentials in the Authorization header and the form disagree")
	}
	if cr.ClientID == "" {
		return Client{}, oerr("invalid_client", "client_id required")
	}
	c, err := s.findClient(ctx, cr.ClientID, load)
	if errors.Is(err, ErrUnknownClient) {
		return Client{}, oerr("invalid_client", "Unknown client_id")
	}
	if err != nil {
		return Client{}, err
	}
	switch {
	case c.Type == Confidential && cr.Secret == "":
		return Client{}, oerr("invalid_client", "Client secret required for confidential clients")
	case c.Type == Public && cr.Secret != "":
		return Client{}, oerr("invalid_client", "Client not configured with secret")
	case c.Type == Confidential:
		if err := s.checkSecret(ctx, c, cr.Secret); err != nil {
			return Client{}, err
		}
	}
	return c, nil
}

// --- token endpoint --------------------------------------------------------

// TokenRequest is a token request (form fields of §6B.6).
type TokenRequest struct {
	GrantType    string
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	Scope        string
	Resources    []string // RFC 8707: narrows the access token's audience
	Client       ClientCredentials
	UserAgent    string
	IP           string
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    int
	RefreshToken string
	Scope        string
	IDToken      string
}

// Token handles the token endpoint.
func (s *Service) Token(ctx context.Context, r TokenRequest) (TokenResponse, error) {
	switch r.GrantType {
	case "authorization_code":
		return s.exchangeCode(ctx, r)
	case "refresh_token":
		return s.refresh(ctx, r)
	case "":
		return TokenResponse{}, oerr("invalid_request", "grant_type required")
	}
	return TokenResponse{}, oerr("unsupported_grant_type", "Must be authorization_code or refresh_token")
}

func (s *Service) exchangeCode(ctx context.Context, r TokenRequest) (TokenResponse, error) {
	if r.Code == "" {
		return TokenResponse{}, oerr("invalid_request", "code required")
	}
	if r.RedirectURI == "" {
		return TokenResponse{}, oerr("invalid_request", "redirect_uri required")
	}
	if !wellFormed(r.RedirectURI) {
		return TokenResponse{}, oerr("invalid_request", "redirect_uri must be text without control characters")
	}
	c, err := s.Authenticate(ctx, r.Client)
	if err != nil {
		return TokenResponse{}, err
	}
	if !wellFormed(r.Code) { // no code looks like that
		return TokenResponse{}, oerr("invalid_grant", "Invalid authorization code")
	}
	code, err := s.store.CodeByHash(ctx, token.HashSecret(r.Code))
	if errors.Is(err, ErrUnknownCode) {
		return TokenResponse{}, oerr("invalid_grant", "Invalid authorization code")
	}
	if err != nil {
		return TokenResponse{}, err
	}
	now := s.now()
	switch {
	case code.ClientID != c.ClientID:
		return TokenResponse{}, oerr("invalid_grant", "Authorization code was not issued to this client")
	case code.UsedAt != nil:
		return TokenResponse{}, s.codeReplayed(ctx, code, now)
	case !now.Before(code.ExpiresAt):
		return TokenResponse{}, oerr("invalid_grant", "Authorization code has expired")
	case code.RedirectURI != r.RedirectURI:
		return TokenResponse{}, oerr("invalid_grant", "redirect_uri mismatch")
	}
	if err := checkPKCE(c, code, r.CodeVerifier); err != nil {
		return TokenResponse{}, err
	}
	aud, err := narrowResources(strings.Fields(code.Resource), r.Resources)
	if err != nil {
		return TokenResponse{}, err
	}
	u, err := s.activeUser(ctx, code.UserID)
	if err != nil {
		return TokenResponse{}, err
	}
	// A code is redeemed once, so it starts one family, named by the code's
	// id: a replay revokes it through the family index (codeReplayed).
	codeID := code.ID
	return s.issue(ctx, issuance{client: c, user: u, scope: ParseScope(code.Scope), resource: code.Resource, aud: aud, nonce: code.Nonce,
		authTime: code.AuthTime, familyID: code.ID, codeID: &codeID, redeems: &code, userAgent: r.UserAgent, ip: r.IP})
}

// codeReplayed revokes every token issued from a code presented twice
// (RFC 6749 §4.1.2, RFC 9700 §4.5).
func (s *Service) codeReplayed(ctx context.Context, code Code, now time.Time) error {
	n, err := s.store.RevokeRefreshFamily(ctx, code.ID, now) // the code's family has its id
	if err != nil {
		return err
	}
	s.logger.WarnContext(ctx, "security: authorization code replayed; tokens issued from it revoked",
		"client_id", code.ClientID, "user_id", code.UserID, "revoked", n)
	return oerr("invalid_grant", "Authorization code has already been used")
}

// checkPKCE enforces RFC 7636 with S256, and refuses a verifier sent for a
// code that had no challenge (PKCE downgrade, RFC 9700 §4.8).
func checkPKCE(c Client, code Code, verifier string) error {
	if code.CodeChallenge == "" {
		if c.Type == Public {
			return oerr("invalid_grant", "PKCE required for public clients")
		}
		if verifier != "" {
			return oerr("invalid_grant", "code_verifier sent but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return oerr("invalid_grant", "code_verifier required")
	}
	if code.CodeChallengeMethod != "S256" || len(verifier) < 43 || len(verifier) > 128 {
		return oerr("invalid_grant", "Invalid code_verifier")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.CodeChallenge)) != 1 {
		return oerr("invalid_grant", "Invalid code_verifier")
	}
	return nil
}

func (s *Service) activeUser(ctx context.Context, id string) (user.User, error) {
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, user.ErrNotFound) || (err == nil && !u.IsActive) {
		return user.User{}, oerr("invalid_grant", "User not found or inactive")
	}
	return u, err
}

func (s *Service) refresh(ctx context.Context, r TokenRequest) (TokenResponse, error) {
	if r.RefreshToken == "" {
		return TokenResponse{}, oerr("invalid_request", "refresh_token required")
	}
	if !wellFormed(r.Scope) {
		return TokenResponse{}, oerr("invalid_request", "scope must be text without control characters")
	}
	c, err := s.Authenticate(ctx, r.Client)
	if err != nil {
		return TokenResponse{}, err
	}
	if !wellFormed(r.RefreshToken) { // no refresh token looks like that
		return TokenResponse{}, oerr("invalid_grant", "Invalid refresh token")
	}
	old, u, err := s.store.RefreshTokenWithUser(ctx, token.HashSecret(r.RefreshToken))
	if errors.Is(err, ErrUnknownRefresh) {
		return TokenResponse{}, oerr("invalid_grant", "Invalid refresh token")
	}
	if err != nil {
		return TokenResponse{}, err
	}
	now := s.now()
	switch {
	case old.ClientID != c.ClientID:
		return TokenResponse{}, oerr("invalid_grant", "Refresh token was not issued to this client")
	case old.RevokedAt != nil:
		return TokenResponse{}, oerr("invalid_grant", "Refresh token has been revoked")
	case old.RotatedAt != nil:
		return TokenResponse{}, s.refreshReused(ctx, old, now)
	case !now.Before(old.ExpiresAt):
		return TokenResponse{}, oerr("invalid_grant", "Refresh token has expired")
	}
	scope := ParseScope(old.Scope)
	if strings.TrimSpace(r.Scope) != "" {
		want := ParseScope(r.Scope)
		if !covers(scope, want) {
			return TokenResponse{}, oerr("invalid_scope", "Cannot expand scope on refresh")
		}
		scope = want
	}
	aud, err := narrowResources(strings.Fields(old.Resource), r.Resources)
	if err != nil {
		return TokenResponse{}, err
	}
	if u.DeletedAt != nil || !u.IsActive {
		return TokenResponse{}, oerr("invalid_grant", "User not found or inactive")
	}
	ua, ip := r.UserAgent, r.IP
	if ua == "" && old.DeviceInfo != nil {
		ua = *old.DeviceInfo
	}
	if ip == "" && old.IPAddress != nil {
		ip = *old.IPAddress
	}
	return s.issue(ctx, issuance{client: c, user: u, scope: scope, resource: old.Resource, aud: aud, authTime: old.AuthTime,
		familyID: old.FamilyID, codeID: old.CodeID, rotates: &old, userAgent: ua, ip: ip})
}

// refreshReused revokes the family of a rotated refresh token presented
// again (RFC 9700 §4.14).
func (s *Service) refreshReused(ctx context.Context, t RefreshToken, now time.Time) error {
	n, err := s.store.RevokeRefreshFamily(ctx, t.FamilyID, now)
	if err != nil {
		return err
	}
	s.logger.WarnContext(ctx, "security: refresh token reused; its token family revoked",
		"client_id", t.ClientID, "user_id", t.UserID, "family_id", t.FamilyID, "revoked", n)
	return oerr("invalid_grant", "Refresh token has already been used; all tokens of this grant have been revoked")
}

type issuance struct {
	client    Client
	user      user.User
	scope     []string
	resource  string   // the grant's resources, space-separated
	aud       []string // the access token's audience: the grant's resources or a subset
	nonce     string
	authTime  time.Time
	familyID  string
	codeID    *string
	rotates   *RefreshToken // the token this issuance replaces, for refreshes
	redeems   *Code         // the code this issuance redeems, for code exchanges
	userAgent string
	ip        string
}

// issue mints an access token, a refresh token (stored hashed, in the
// family) and, with openid, an ID token.
func (s *Service) issue(ctx context.Context, in issuance) (TokenResponse, error) {
	now := s.now()
	secret := token.RandomSecret()
	rt := RefreshToken{ID: user.NewID(), Hash: token.HashSecret(secret), FamilyID: in.familyID, CodeID: in.codeID,
		ClientID: in.client.ClientID, UserID: in.user.ID, Scope: JoinScope(in.scope), Resource: in.resource,
		AuthTime: in.authTime, ExpiresAt: now.Add(in.client.RefreshTokenTTL), CreatedAt: now,
		DeviceInfo: nonEmpty(truncate(printable(in.userAgent), 500)), IPAddress: nonEmpty(truncate(in.ip, 45))}
	switch {
	case in.rotates != nil:
		ok, err := s.store.RotateRefreshToken(ctx, in.rotates.ID, rt, now)
		if err != nil {
			return TokenResponse{}, err
		}
		if !ok { // a concurrent refresh with the same token won
			return TokenResponse{}, s.refreshReused(ctx, *in.rotates, now)
		}
	case in.redeems != nil:
		ok, err := s.store.RedeemCode(ctx, in.redeems.ID, rt, now)
		if err != nil {
			return TokenResponse{}, err
		}
		if !ok { // a concurrent redemption won: this one is a replay
			return TokenResponse{}, s.codeReplayed(ctx, *in.redeems, now)
		}
	default:
		if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
			return TokenResponse{}, err
		}
	}
	aud := in.aud
	if len(aud) == 0 {
		aud = []string{in.client.ClientID}
	}
	exp := now.Add(in.client.AccessTokenTTL).Truncate(time.Second)
	ac := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: in.user.ID, Audience: jwt.ClaimStrings(aud),
			ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now.Truncate(time.Second)),
			NotBefore: jwt.NewNumericDate(now.Truncate(time.Second)), ID: rt.ID},
		Scope: JoinScope(in.scope), ClientID: in.client.ClientID, Email: in.user.Email, Name: displayName(in.user),
		Nonce: in.nonce, AuthTime: in.authTime.Unix(),
	}
	access, err := s.tokens.Access(ctx, ac)
	if err != nil {
		return TokenResponse{}, fmt.Errorf("sign access token: %w", err)
	}
	out := TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(in.client.AccessTokenTTL.Seconds()),
		RefreshToken: secret, Scope: JoinScope(in.scope)}
	if slices.Contains(in.scope, "openid") {
		claims := jwt.MapClaims{"sub": in.user.ID, "aud": in.client.ClientID, "azp": in.client.ClientID,
			"exp": exp.Unix(), "iat": now.Unix(), "auth_time": in.authTime.Unix(), "at_hash": atHash(access)}
		if in.nonce != "" {
			claims["nonce"] = in.nonce
		}
		for k, v := range userClaims(in.user, in.scope) {
			claims[k] = v
		}
		if out.IDToken, err = s.tokens.IDToken(ctx, claims); err != nil {
			return TokenResponse{}, fmt.Errorf("sign ID token: %w", err)
		}
	}
	return out, nil
}

func displayName(u user.User) string {
	n := strings.TrimSpace(u.FirstName + " " + deref(u.LastName))
	if n == "" {
		return u.Email
	}
	return n
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// printable is s as text the database stores: invalid UTF-8 and control
// characters (a User-Agent header may carry both) dropped.
func printable(s string) string {
	if wellFormed(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// userClaims are the OpenID Connect claims of a user for scopes.
func userClaims(u user.User, scopes []string) map[string]any {
	c := map[string]any{}
	if slices.Contains(scopes, "email") {
		c["email"] = u.Email
		c["email_verified"] = false
	}
	if slices.Contains(scopes, "profile") {
		c["name"] = displayName(u)
		c["given_name"] = u.FirstName
		if u.LastName != nil {
			c["family_name"] = *u.LastName
		}
		if u.Locale != nil {
			c["locale"] = *u.Locale
		}
		c["updated_at"] = u.UpdatedAt.Unix()
	}
	return c
}
