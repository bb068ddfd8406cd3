package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/pat"
)

// Personal access tokens (issue 9): the management operations, and the
// authentication of a request that carries a token (patPrincipal, called by
// the gate in operations.go). docs/FEATURE_EXAMPLE.md walks through how
// this feature was built.

// patRoutes registers the personal-access-token operations. All of them
// are first-party only: routeScopes gives them no scope, so the gate refuses
// personal access tokens and applications' tokens (403), and the service
// refuses any actor without a session.
func (s *server) patRoutes() {
	const (
		tTokens = "Personal access tokens"
		tAdmin  = "Admin"
		ok      = http.StatusOK
		mine    = "/api/v1/users/me/tokens"
		all     = "/api/v1/admin/tokens"
		only    = " Only with a first-party access token (from /auth/login): a personal access token or an application's " +
			"OAuth token gets 403, so a leaked token cannot mint or hide others."
		notFound = " An id that is not a UUID: 422."
	)
	withErrors := func(o huma.Operation, codes ...int) huma.Operation { o.Errors = codes; return o }
	register(s, endpoint{op: withErrors(op("POST", mine, "createPersonalAccessToken", "Create a personal access token", tTokens, http.StatusCreated,
		"Creates a token for scripts and CI, sent as Authorization: Bearer gatehouse_pat_… on /api/v1 operations that accept "+
			"its scopes (docs/SCOPES.md). The token is in this response only (token); Gatehouse stores its SHA-256 digest. "+
			"name: 1 to 100 characters after trimming, no control characters, no < or >. scopes: one or more of read:users, "+
			"write:users, read:organizations, write:organizations, and admin for superusers only (403 otherwise; it acts as a "+
			"superuser only while the owner is one). Expiry: expires_in_days, 1 to PAT_MAX_EXPIRY_DAYS (default 365), or absent "+
			"for PAT_DEFAULT_EXPIRY_DAYS (default 90); \"no_expiry\": true for a token that never expires, only where "+
			"PAT_ALLOW_NO_EXPIRY=true (422 otherwise); null, 0, negative or over the limit: 422. At most 100 live tokens per "+
			"user (409 PAT_001). A password change or reset revokes every token (unless PAT_REVOKE_ON_PASSWORD_CHANGE=false), "+
			"and so do deactivation and deletion of the account."+only), http.StatusConflict, http.StatusUnprocessableEntity),
		gate: signedIn, limit: limit{10, false}}, s.createPAT)
	register(s, endpoint{op: op("GET", mine, "listPersonalAccessTokens", "The caller's personal access tokens", tTokens, ok,
		"The caller's live tokens (neither revoked nor expired), newest first: name, prefix, scopes, created_at, "+
			"last_used_at (at most a minute late) and expires_at. Never the token nor its digest."+only),
		gate: signedIn}, s.listPATs)
	register(s, endpoint{op: withErrors(op("DELETE", mine+"/{token_id}", "revokePersonalAccessToken", "Revoke a personal access token", tTokens, ok,
		"The token stops working at once. Revoking a revoked or expired token succeeds again. Another user's token answers "+
			"404, exactly like an unknown id."+notFound+only), http.StatusNotFound, http.StatusUnprocessableEntity),
		gate: signedIn}, s.revokePAT)
	register(s, endpoint{op: op("GET", all, "adminListPersonalAccessTokens", "List every user's personal access tokens", tAdmin, ok,
		"Superusers only. is_active omitted or true lists live tokens, false the revoked and expired ones (kept 30 days). "+
			"user_id lists one user's. Newest first. Tokens of soft-deleted users are not listed."+notFound+only),
		gate: admin}, s.adminListPATs)
	register(s, endpoint{op: withErrors(op("DELETE", all+"/{token_id}", "adminRevokePersonalAccessToken", "Revoke anyone's personal access token", tAdmin, ok,
		"Superusers only. The token stops working at once; revoking it again succeeds. Unknown tokens and tokens of "+
			"soft-deleted users: 404."+notFound+only), http.StatusNotFound, http.StatusUnprocessableEntity),
		gate: admin}, s.adminRevokePAT)
}

// patResponse describes a token: never the token itself nor its digest.
type patResponse struct {
	ID         string     `json:"id" format:"uuid"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"The token's first 22 characters (gatehouse_pat_ and 8 more), to recognise it"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at" doc:"Last use, recorded at most once a minute; null when never used"`
	ExpiresAt  *time.Time `json:"expires_at" doc:"null when the token never expires"`
}

func toPATResponse(t pat.Token) patResponse {
	return patResponse{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Scopes: t.Scopes, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt}
}

// patCreatedResponse is a new token with its secret, shown once.
type patCreatedResponse struct {
	ID         string     `json:"id" format:"uuid"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"The token's first 22 characters, as listings show them"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at" doc:"Always null here"`
	ExpiresAt  *time.Time `json:"expires_at" doc:"null when the token never expires"`
	Token      string     `json:"token" doc:"The token. Shown in this response only: store it now; Gatehouse keeps only its SHA-256 digest"`
}

type patCreateInput struct {
	Body struct {
		Name          string        `json:"name" doc:"1 to 100 characters after trimming; no control characters, no < or >"`
		Scopes        []string      `json:"scopes" doc:"read:users, write:users, read:organizations, write:organizations; admin for superusers"`
		ExpiresInDays optional[int] `json:"expires_in_days,omitempty" doc:"Days until the token expires, 1 to PAT_MAX_EXPIRY_DAYS (default 365); absent: PAT_DEFAULT_EXPIRY_DAYS (default 90). null is refused: use no_expiry"`
		NoExpiry      bool          `json:"no_expiry,omitempty" doc:"true: the token never expires (only with PAT_ALLOW_NO_EXPIRY=true; not together with expires_in_days)"`
	}
}

type patCreateOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         patCreatedResponse
}

func (s *server) createPAT(ctx context.Context, in *patCreateInput) (*patCreateOutput, error) {
	t, secret, err := s.PATs.Create(ctx, principalFrom(ctx).Actor, pat.Input{Name: in.Body.Name, Scopes: in.Body.Scopes,
		ExpiresInDays: in.Body.ExpiresInDays.opt(), NoExpiry: in.Body.NoExpiry})
	if err != nil {
		return nil, err
	}
	return &patCreateOutput{CacheControl: "no-store", Body: patCreatedResponse{ID: t.ID, Name: t.Name, Prefix: t.Prefix,
		Scopes: t.Scopes, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, Token: secret}}, nil
}

type patList struct {
	Tokens []patResponse `json:"tokens"`
	Total  int           `json:"total"`
}

func (s *server) listPATs(ctx context.Context, _ *struct{}) (*struct{ Body patList }, error) {
	list, err := s.PATs.Mine(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	out := make([]patResponse, len(list))
	for i, t := range list {
		out[i] = toPATResponse(t)
	}
	return &struct{ Body patList }{Body: patList{Tokens: out, Total: len(out)}}, nil
}

type patIDInput struct {
	TokenID string `path:"token_id" doc:"Token id (UUID)"`
}

func (s *server) revokePAT(ctx context.Context, in *patIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("token_id", in.TokenID)
	if err != nil {
		return nil, err
	}
	t, err := s.PATs.Revoke(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message("Personal access token revoked: " + t.Name), nil
}

// patAdminResponse is a token with its owner, for superusers.
type patAdminResponse struct {
	ID         string     `json:"id" format:"uuid"`
	UserID     string     `json:"user_id" format:"uuid"`
	UserEmail  string     `json:"user_email"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"The token's first 22 characters"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at" doc:"null when the token never expires"`
	RevokedAt  *time.Time `json:"revoked_at"`
	IsActive   bool       `json:"is_active" doc:"Neither revoked nor expired"`
}

type adminListPATsInput struct {
	PageParams
	UserID   string `query:"user_id" doc:"Only this user's tokens (UUID)"`
	IsActive string `query:"is_active" doc:"true (the default): live tokens; false: revoked or expired ones. Also 1/0, yes/no, on/off"`
}

func (s *server) adminListPATs(ctx context.Context, in *adminListPATsInput) (*struct {
	Body paginated[patAdminResponse]
}, error) {
	active, err := optionalBool("is_active", in.IsActive)
	if err != nil {
		return nil, err
	}
	q := pat.ListQuery{Offset: in.offset(), Limit: in.Limit, Live: active == nil || *active}
	if in.UserID != "" {
		if q.UserID, err = parseID("user_id", in.UserID); err != nil {
			return nil, err
		}
	}
	list, total, err := s.PATs.List(ctx, principalFrom(ctx).Actor, q)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]patAdminResponse, len(list))
	for i, t := range list {
		out[i] = patAdminResponse{ID: t.ID, UserID: t.UserID, UserEmail: t.UserEmail, Name: t.Name, Prefix: t.Prefix,
			Scopes: t.Scopes, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt,
			RevokedAt: t.RevokedAt, IsActive: t.Live(now)}
	}
	return &struct {
		Body paginated[patAdminResponse]
	}{Body: paginate(out, total, in.Page, in.Limit)}, nil
}

func (s *server) adminRevokePAT(ctx context.Context, in *patIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("token_id", in.TokenID)
	if err != nil {
		return nil, err
	}
	t, err := s.PATs.RevokeAny(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message("Personal access token revoked: " + t.Name), nil
}

var errNotForPATs = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
	"This endpoint does not accept personal access tokens; sign in to Gatehouse directly")

// patPrincipal authenticates a personal access token for the operation of
// ctx. The token must be live and its owner active (pat.Service), and the
// operation's scope, from routeScopes (the one table, shared with the
// authorization server's tokens), must be among the token's: otherwise 403
// with an RFC 6750 insufficient_scope challenge. Operations without a scope
// refuse personal access tokens altogether. The caller is the token's owner,
// a superuser only with the admin scope.
func (s *server) patPrincipal(ctx huma.Context, raw string, g gate) (principal, error) {
	if g == maybeSignedIn {
		// Optional sign-in (social login) is first-party only: the request
		// goes on anonymously.
		return principal{}, errNotForPATs
	}
	t, owner, err := s.PATs.Authenticate(ctx.Context(), raw)
	if err != nil {
		return principal{}, err
	}
	scope, _ := ctx.Operation().Metadata[metaScope].(string)
	if scope == "" {
		return principal{}, errNotForPATs
	}
	if !t.Allows(scope) {
		return principal{}, &scopeError{
			challenge: `Bearer error="insufficient_scope", scope=` + quote(scope),
			err: apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
				"The personal access token lacks the "+scope+" scope this endpoint needs"),
		}
	}
	return principal{User: owner, Actor: t.Actor(owner)}, nil
}
