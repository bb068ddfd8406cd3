package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// userResponse is the reference's UserResponse (same keys, same order),
// plus preferences (fix 38).
type userResponse struct {
	Email       string          `json:"email"`
	FirstName   string          `json:"first_name"`
	LastName    *string         `json:"last_name"`
	PhoneNumber *string         `json:"phone_number"`
	ID          string          `json:"id" format:"uuid"`
	IsActive    bool            `json:"is_active"`
	IsSuperuser bool            `json:"is_superuser"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Locale      *string         `json:"locale"`
	Preferences json.RawMessage `json:"preferences" doc:"Free-form settings object, or null"`
}

func toUserResponse(u user.User) userResponse {
	prefs := u.Preferences
	if len(prefs) == 0 {
		prefs = json.RawMessage("null")
	}
	return userResponse{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, PhoneNumber: u.PhoneNumber,
		ID: u.ID, IsActive: u.IsActive, IsSuperuser: u.IsSuperuser, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		Locale: u.Locale, Preferences: prefs}
}

// messageResponse is the reference's MessageResponse.
type messageResponse struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

func message(msg string) *struct{ Body messageResponse } {
	return &struct{ Body messageResponse }{Body: messageResponse{Success: true, Message: msg}}
}

// tokenResponse is the reference's Token.
type tokenResponse struct {
	AccessToken  string       `json:"access_token"`
	RefreshToken string       `json:"refresh_token"`
	TokenType    string       `json:"token_type" example:"bearer"`
	User         userResponse `json:"user"`
	ExpiresIn    int          `json:"expires_in" doc:"Access-token lifetime in seconds"`
}

// tokenOutput carries a token response with Cache-Control: no-store.
type tokenOutput struct {
	CacheControl string `header:"Cache-Control"`
	Pragma       string `header:"Pragma"`
	Body         tokenResponse
}

func toTokenOutput(t auth.Tokens) *tokenOutput {
	return &tokenOutput{CacheControl: "no-store", Pragma: "no-cache", Body: tokenResponse{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "bearer",
		User: toUserResponse(t.User), ExpiresIn: t.ExpiresIn,
	}}
}

// pagination is the reference's pagination block.
type pagination struct {
	Total      int  `json:"total"`
	Page       int  `json:"page"`
	PageSize   int  `json:"page_size" doc:"Number of items on this page"`
	TotalPages int  `json:"total_pages"`
	HasNext    bool `json:"has_next"`
	HasPrev    bool `json:"has_prev"`
}

type paginated[T any] struct {
	Data       []T        `json:"data"`
	Pagination pagination `json:"pagination"`
}

func paginate[T any](items []T, total, page, limit int) paginated[T] {
	if items == nil {
		items = []T{}
	}
	pages := 0
	if total > 0 {
		pages = (total + limit - 1) / limit
	}
	return paginated[T]{Data: items, Pagination: pagination{Total: total, Page: page, PageSize: len(items),
		TotalPages: pages, HasNext: page < pages, HasPrev: page > 1}}
}

// PageParams are the pagination query parameters of every list (exported
// because huma reads parameters of embedded structs only when exported).
type PageParams struct {
	Page  int `query:"page" default:"1" minimum:"1" doc:"Page number, from 1"`
	Limit int `query:"limit" default:"20" minimum:"1" maximum:"100" doc:"Items per page (1-100)"`
}

// offset computes the row offset without overflowing on absurd pages.
func (p PageParams) offset() int {
	const maxOffset = 1 << 40
	if p.Page-1 > maxOffset/p.Limit {
		return maxOffset
	}
	return (p.Page - 1) * p.Limit
}

// optionalBool parses a boolean query parameter with the reference's
// spellings (true/false/1/0/yes/no/on/off); "" means absent.
func optionalBool(field, raw string) (*bool, error) {
	if raw == "" {
		return nil, nil
	}
	b, ok := config.ParseBool(raw)
	if !ok {
		return nil, apperr.ValidationField(field, "Input should be a valid boolean, unable to interpret input")
	}
	return &b, nil
}

// parseID validates a UUID path parameter and returns its canonical form.
func parseID(field, raw string) (string, error) {
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return "", apperr.ValidationField(field, "Input should be a valid UUID, invalid character or length")
	}
	return id.String(), nil
}

// optional is a JSON field of a partial update that tells "absent" from
// "null" from a value.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON is only called when the key is present.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Schema documents the field as a nullable T.
func (o optional[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), true, "")
	s.Nullable = true
	return &s
}

func (o optional[T]) opt() user.Opt[T] {
	return user.Opt[T]{Set: o.Set, Null: o.Null, Value: o.Value}
}

// checkSearch refuses search strings that no stored text can contain.
func checkSearch(q string) error {
	if strings.ContainsRune(q, 0) || !utf8.ValidString(q) {
		return apperr.ValidationField("search", "Search must be valid text without NUL characters")
	}
	return nil
}
