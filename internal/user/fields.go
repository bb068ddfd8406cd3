package user

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// valuePrefix is how the reference words messages of its custom field rules.
const valuePrefix = "Value error, "

// Field length limits (the reference's column sizes).
const (
	MaxEmailLength = 254
	MaxNameLength  = 100
)

var reservedTLDs = []string{"test", "local", "localhost", "invalid", "onion", "arpa"}

// ParseEmail validates an email address as the reference does (RFC syntax,
// no DNS, reserved TLDs refused) and normalises it to lower case.
func ParseEmail(field, raw string) (string, *apperr.Error) {
	bad := func(why string) (string, *apperr.Error) {
		return "", apperr.ValidationField(field, "value is not a valid email address: "+why)
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return bad("An email address must have an @-sign.")
	}
	if len(s) > MaxEmailLength {
		return bad(fmt.Sprintf("The email address is too long (%d characters too many).", len(s)-MaxEmailLength))
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return bad("An email address must have an @-sign.")
	}
	local, domain := s[:at], strings.ToLower(s[at+1:])
	switch {
	case local == "":
		return bad("There must be something before the @-sign.")
	case len(local) > 64:
		return bad("The email address is too long before the @-sign.")
	case !utf8.ValidString(s) || hasControl(s):
		return bad("The email address contains invalid characters.")
	case strings.ContainsAny(local, " \t\r\n\"(),:;<>[\\]@") || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return bad("The email address contains invalid characters before the @-sign.")
	case domain == "":
		return bad("There must be something after the @-sign.")
	case !strings.Contains(domain, "."):
		return bad("The part after the @-sign is not valid. It should have a period.")
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return bad("The part after the @-sign is not valid.")
		}
		for _, r := range l {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127) {
				return bad("The part after the @-sign contains invalid characters.")
			}
		}
	}
	tld := labels[len(labels)-1]
	if slices.Contains(reservedTLDs, tld) {
		return bad("The part after the @-sign is a special-use or reserved name that cannot be used with email.")
	}
	if tld[0] >= '0' && tld[0] <= '9' {
		return bad("The part after the @-sign is not valid.")
	}
	return strings.ToLower(local) + "@" + domain, nil
}

var phonePattern = regexp.MustCompile(`^(\+[0-9]{8,14}|0[0-9]{8,14})$`)

// ParsePhone normalises a phone number as reference §4.7 does: spaces, '-',
// '(' and ')' are removed and the rest must be + or 0 and 8-14 digits.
func ParsePhone(field, raw string) (string, *apperr.Error) {
	if strings.TrimSpace(raw) == "" {
		return "", apperr.ValidationField(field, valuePrefix+"Phone number cannot be empty")
	}
	cleaned := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(raw)
	if !phonePattern.MatchString(cleaned) {
		return "", apperr.ValidationField(field, valuePrefix+"Phone number must start with + or 0 followed by 8-14 digits")
	}
	return cleaned, nil
}

var (
	localePattern    = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)
	supportedLocales = []string{"en", "en-gb", "en-us", "it", "it-it"}
)

// ParseLocale validates and lower-cases a locale (reference §4.7).
func ParseLocale(field, raw string) (string, *apperr.Error) {
	if len(raw) > 10 {
		return "", apperr.ValidationField(field, "String should have at most 10 characters")
	}
	if !localePattern.MatchString(raw) {
		return "", apperr.ValidationField(field, valuePrefix+fmt.Sprintf("Invalid locale format '%s'. Expected a language code such as 'en' or 'en-US'", raw))
	}
	l := strings.ToLower(raw)
	if !slices.Contains(supportedLocales, l) {
		return "", apperr.ValidationField(field, valuePrefix+fmt.Sprintf("Unsupported locale '%s'. Supported locales: ['en', 'en-gb', 'en-us', 'it', 'it-it']", raw))
	}
	return l, nil
}

// CheckName validates a first or last name: at most 100 characters, no
// control characters. (The reference failed with 400/500 on long names.)
func CheckName(field, s string) *apperr.Error {
	if utf8.RuneCountInString(s) > MaxNameLength {
		return apperr.ValidationField(field, fmt.Sprintf("String should have at most %d characters", MaxNameLength))
	}
	if hasControl(s) {
		return apperr.ValidationField(field, "must not contain control characters")
	}
	return nil
}

// hasControl reports ASCII control characters (NUL included), which no
// text field accepts.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
