package social

import (
	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// Errors with the reference's codes and messages (§6A), without the
// reference's "401: " prefixes.
var (
	ErrDisabled           = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "OAuth is not enabled")
	ErrUnknownProvider    = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "Unknown OAuth provider")
	ErrProviderDisabled   = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "OAuth provider is not enabled")
	ErrProviderDown       = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "The OAuth provider cannot be reached; try again later")
	ErrRedirectNotAllowed = &apperr.Error{Kind: apperr.BadRequest, Code: apperr.CodeInvalidInput, Field: "redirect_uri",
		Message: "Invalid redirect_uri: it must start with FRONTEND_URL or be listed in OAUTH_ALLOWED_REDIRECT_URIS"}
	ErrAlreadyLinkedStart = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "You already have an account of this provider linked")

	ErrState            = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Invalid or expired OAuth state")
	ErrRedirectMismatch = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Redirect URI mismatch")
	ErrExchange         = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Failed to exchange authorization code")
	ErrUserInfo         = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Failed to get user information from provider")
	ErrIDToken          = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "ID token verification error")
	ErrNoSubject        = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Provider did not return user ID")
	ErrNoEmail          = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Email is required for registration")
	ErrUnverifiedEmail  = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "The provider's email address is not verified")
	ErrInactive         = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "User account is inactive")
	ErrLinkUserGone     = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "User not found for account linking")
	ErrAlreadyLinked    = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "You already have an account of this provider linked")
	ErrLinkedElsewhere  = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "This provider account is already linked to another user")

	ErrCannotUnlink = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput,
		"Cannot unlink OAuth account. You must have either a password set or at least one other OAuth provider linked.")
	ErrNoLink = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "No account of this provider found to unlink")
)
