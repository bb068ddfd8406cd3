package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// gate is the coarse, route-level access check. Fine-grained permission
// decisions are made by the services with an explicit actor.
type gate int

const (
	public        gate = iota // no credentials needed
	signedIn                  // an active user's access token
	superuser                 // an active superuser's access token ("Not enough permissions")
	admin                     // the same, for /api/v1/admin ("Superuser privileges required")
	maybeSignedIn             // a valid active user's token is used if present; anything else means anonymous
)

// limit is a per-client-IP, per-endpoint rate limit (reference §5).
type limit struct {
	perMinute int
	// scaled limits are multiplied by 100 when IS_TEST=True, as the
	// reference does for a few endpoints.
	scaled bool
}

// endpoint is one /api/v1 operation with its gate and rate limit.
type endpoint struct {
	op    huma.Operation
	gate  gate
	limit limit
	// provider operations answer 404 when the authorization server is off.
	provider bool
}

const (
	metaGate     = "gatehouse.gate"
	metaProvider = "gatehouse.provider"
	metaScope    = "gatehouse.scope"
)

// register adds an operation. The wrapper applies the rate limit after the
// input was parsed and validated (as the reference does), then runs the
// handler and turns its error into the envelope.
func register[I, O any](s *server, e endpoint, h func(context.Context, *I) (*O, error)) {
	op := e.op
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[metaGate] = e.gate
	op.Metadata[metaProvider] = e.provider
	switch e.gate {
	case public:
	case maybeSignedIn:
		op.Security = []map[string][]string{{}, {"bearer": {}}}
	default:
		scope, listed := routeScopes[op.OperationID]
		if !listed {
			panic("httpapi: " + op.OperationID + " has no entry in routeScopes")
		}
		op.Metadata[metaScope] = scope
		op.Security = []map[string][]string{{"bearer": {}}}
		if scope != "" {
			op.Security = append(op.Security, map[string][]string{"oauth": {scope}})
			op.Description += "\n\nOAuth access tokens for the API need the `" + scope + "` scope."
		}
		op.Errors = appendMissing(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	}
	if e.limit.perMinute > 0 {
		op.Errors = appendMissing(op.Errors, http.StatusTooManyRequests)
		op.Description += fmt.Sprintf("\n\nRate limit: %d requests per minute per client IP.", e.limit.perMinute)
	}
	huma.Register(s.api, op, func(ctx context.Context, in *I) (*O, error) {
		refund, err := s.checkLimit(ctx, op.OperationID, e.limit)
		if err != nil {
			return nil, s.toEnvelope(ctx, err)
		}
		out, err := h(ctx, in)
		if err != nil {
			if apperr.KindOf(err) == apperr.Invalid {
				// Input the handler found invalid does not use up the budget.
				refund()
			}
			return nil, s.toEnvelope(ctx, err)
		}
		return out, nil
	})
}

func appendMissing(list []int, codes ...int) []int {
	for _, c := range codes {
		found := false
		for _, l := range list {
			found = found || l == c
		}
		if !found {
			list = append(list, c)
		}
	}
	return list
}

// checkLimit counts the request against the endpoint's limit and sets the
// X-RateLimit headers; over the limit it returns a 429 with Retry-After.
// The returned func gives the request back to the budget.
func (s *server) checkLimit(ctx context.Context, opID string, l limit) (refund func(), err error) {
	if l.perMinute == 0 || !s.Config.RateLimit.Enabled {
		return func() {}, nil
	}
	n := l.perMinute
	if l.scaled {
		n *= s.Config.RateLimit.Multiplier
	}
	key := "rl:" + opID + ":" + ClientIP(ctx)
	res := s.Limiter.Allow(ctx, key, n, time.Minute)
	if set, ok := ctx.Value(keyHeaderSetter).(func(k, v string)); ok {
		set("X-RateLimit-Limit", strconv.Itoa(res.Limit))
		set("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
		if !res.Reset.IsZero() {
			set("X-RateLimit-Reset", strconv.FormatInt(res.Reset.Unix(), 10))
		}
	}
	if !res.Allowed {
		s.Metrics.RateLimited(metrics.LimiterIP, opID)
		return nil, &apperr.Error{Kind: apperr.RateLimited, Code: apperr.CodeRateLimited,
			Message:    fmt.Sprintf("Rate limit exceeded: %d per 1 minute", n),
			RetryAfter: max(1, int((res.RetryAfter+time.Second-1)/time.Second))}
	}
	return func() { s.Limiter.Refund(ctx, key, time.Minute) }, nil
}

const keyHeaderSetter ctxKey = 100

// principal is the authenticated caller of a request.
type principal struct {
	User  user.User
	Actor user.Actor
}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(keyActor).(principal)
	return p
}

// authenticate is the huma middleware that enforces an operation's gate
// before its input is read.
func (s *server) authenticate(ctx huma.Context, next func(huma.Context)) {
	setter := func(k, v string) { ctx.SetHeader(k, v) }
	ctx = huma.WithValue(ctx, keyHeaderSetter, setter)
	g, _ := ctx.Operation().Metadata[metaGate].(gate)
	fail := func(err error) {
		env := s.toEnvelope(ctx.Context(), err)
		for k, vs := range env.headers {
			for _, v := range vs {
				ctx.SetHeader(k, v)
			}
		}
		var se *scopeError
		switch {
		case errors.As(err, &se):
			ctx.SetHeader("WWW-Authenticate", se.challenge)
		case env.status == http.StatusUnauthorized && s.OAuth != nil && s.Config.Provider.Enabled:
			code := ""
			if ctx.Header("Authorization") != "" {
				code = "invalid_token"
			}
			scope, _ := ctx.Operation().Metadata[metaScope].(string)
			ctx.SetHeader("WWW-Authenticate", s.apiChallenge(code, scope))
		}
		ctx.SetHeader("Content-Type", "application/json")
		ctx.SetStatus(env.status)
		_ = jsonEncode(ctx.BodyWriter(), env)
	}
	if p, _ := ctx.Operation().Metadata[metaProvider].(bool); p && (s.OAuth == nil || !s.Config.Provider.Enabled) {
		fail(errProviderDisabled)
		return
	}
	if g == public {
		next(ctx)
		return
	}
	raw, ok := auth.BearerToken(ctx.Header("Authorization"))
	if !ok && g == maybeSignedIn {
		next(ctx)
		return
	}
	if !ok {
		fail(auth.ErrNotAuthenticated)
		return
	}
	var p principal
	var err error
	switch {
	case pat.IsToken(raw) && s.PATs != nil:
		p, err = s.patPrincipal(ctx, raw, g)
	case isProviderToken(raw) && g == maybeSignedIn:
		// Optional sign-in (social login) is first-party only.
		next(ctx)
		return
	case isProviderToken(raw) && s.OAuth != nil && s.Config.Provider.Enabled:
		scope, _ := ctx.Operation().Metadata[metaScope].(string)
		var se *scopeError
		p, se, err = s.providerPrincipal(ctx.Context(), raw, scope)
		if se != nil {
			fail(se)
			return
		}
	default:
		p.User, p.Actor, err = s.Auth.Authenticate(ctx.Context(), raw)
	}
	if err != nil && g == maybeSignedIn {
		next(ctx)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if g == superuser && !p.Actor.IsSuperuser {
		fail(errNotSuperuser)
		return
	}
	if g == admin && !p.Actor.IsSuperuser {
		fail(errNotAdmin)
		return
	}
	next(huma.WithValue(ctx, keyActor, p))
}

var (
	errNotSuperuser = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not enough permissions")
	errNotAdmin     = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Superuser privileges required")
)

// limited applies an endpoint's rate limit to a plain net/http handler (the
// protocol endpoints), with the same counters and headers as the API.
func (s *server) limited(name string, l limit, h http.HandlerFunc) http.HandlerFunc {
	return s.limitedAs(name, l, h, func(w http.ResponseWriter, r *http.Request, err error) {
		writeEnvelope(w, s.toEnvelope(r.Context(), err))
	})
}

// protocolLimited is limited for the token, revocation, introspection and
// registration endpoints, whose clients read RFC 6749 errors: a refusal is 429
// temporarily_unavailable with Retry-After and no-store (docs/OAUTH.md).
func (s *server) protocolLimited(name string, l limit, h http.HandlerFunc) http.HandlerFunc {
	return s.limitedAs(name, l, h, s.writeOAuthError)
}

// browserLimited is limited for the authorization endpoint, which browsers
// navigate to: a refusal is a page (429, Retry-After) for them and the
// envelope for other clients.
func (s *server) browserLimited(name string, l limit, h http.HandlerFunc) http.HandlerFunc {
	return s.limitedAs(name, l, h, func(w http.ResponseWriter, r *http.Request, err error) {
		if wantsHTML(r) {
			s.renderFailure(w, r, "Too many requests", err)
			return
		}
		writeEnvelope(w, s.toEnvelope(r.Context(), err))
	})
}

func (s *server) limitedAs(name string, l limit, h http.HandlerFunc, fail func(http.ResponseWriter, *http.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), keyHeaderSetter, func(k, v string) { w.Header().Set(k, v) })
		if _, err := s.checkLimit(ctx, name, l); err != nil {
			fail(w, r.WithContext(ctx), err)
			return
		}
		h(w, r.WithContext(ctx))
	}
}
